// A stdio MCP server, built with the official MCP TypeScript SDK (low-level `Server`), whose one
// tool declares an input schema that is not `type: object`, so the runtime wraps it as
// `{"input": ...}` (issue #17). `echo-arguments` answers with the exact `arguments` it received,
// as JSON text, and carries no annotations.
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const server = new Server({ name: 'wrapped-test', version: '1.0.0' }, { capabilities: { tools: {} } });
server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: [{
    name: 'echo-arguments',
    description: 'Returns the arguments it received',
    inputSchema: { type: ['object', 'null'], properties: { text: { type: 'string' } } },
  }],
}));
server.setRequestHandler(CallToolRequestSchema, async (request) => ({
  content: [{ type: 'text', text: JSON.stringify(request.params.arguments ?? null) }],
}));
await server.connect(new StdioServerTransport());
