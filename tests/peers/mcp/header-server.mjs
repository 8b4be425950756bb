// A stdio MCP server, built with the official MCP TypeScript SDK (low-level `Server`), whose one
// tool marks an argument with `x-mcp-header` (MCP 2026-07-28: clients repeat it in the
// `Mcp-Param-Region` header), for the MCP door's header checks (host/tests/it/mcp_door.rs).
// `route` answers with the exact `arguments` it received, as JSON text.
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const server = new Server({ name: 'header-test', version: '1.0.0' }, { capabilities: { tools: {} } });
server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: [{
    name: 'route',
    description: 'Returns the arguments it received',
    inputSchema: {
      type: 'object',
      properties: { region: { type: 'string', 'x-mcp-header': 'Region' }, text: { type: 'string' } },
      required: ['region'],
    },
  }],
}));
server.setRequestHandler(CallToolRequestSchema, async (request) => ({
  content: [{ type: 'text', text: JSON.stringify(request.params.arguments ?? null) }],
}));
await server.connect(new StdioServerTransport());
