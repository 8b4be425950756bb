// A stdio MCP server, built with the official MCP TypeScript SDK (low-level `Server`), whose tool
// definitions are read from the JSON file `TOOLS_FILE` at every `tools/list`, so a test can change
// a definition between listings (a "rug pull") and watch the runtime withhold the tool. Every
// listed tool answers `tools/call` with its own name and the arguments it received, as JSON text.
import { readFileSync } from 'node:fs';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const tools = () => JSON.parse(readFileSync(process.env.TOOLS_FILE, 'utf8'));
const server = new Server({ name: 'pinned-test', version: '1.0.0' }, { capabilities: { tools: {} } });
server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: tools() }));
server.setRequestHandler(CallToolRequestSchema, async (request) => ({
  content: [{ type: 'text', text: JSON.stringify({ tool: request.params.name, arguments: request.params.arguments ?? null }) }],
}));
await server.connect(new StdioServerTransport());
