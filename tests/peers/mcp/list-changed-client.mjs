// Wait for Portcullis' MCP door to announce a changed tool list, with the official MCP
// TypeScript SDK client, for host/tests/it/mcp_door_stream.rs. Connects (the SDK opens the
// session's GET stream by itself), lists tools, prints {"ready": true, tools, capabilities},
// then waits up to TIMEOUT_MS for notifications/tools/list_changed (its
// setNotificationHandler), lists again and prints {notified, tools}.
//
// Usage: node tests/peers/mcp/list-changed-client.mjs http <url of /mcp>
//        node tests/peers/mcp/list-changed-client.mjs stdio <portcullis binary>   (runs `mcp stdio`)
// Env: TOKEN (a bearer token; stdio: PORTCULLIS_MCP_URL and PORTCULLIS_MCP_TOKEN), TIMEOUT_MS
// (default 20000).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

const [mode, target] = process.argv.slice(2);
const timeout = Number(process.env.TIMEOUT_MS || 20000);
let transport;
if (mode === 'stdio') {
  transport = new StdioClientTransport({ command: target, args: ['mcp', 'stdio'], env: process.env, stderr: 'ignore' });
} else {
  const options = {};
  if (process.env.TOKEN) options.requestInit = { headers: { Authorization: `Bearer ${process.env.TOKEN}` } };
  transport = new StreamableHTTPClientTransport(new URL(target), options);
}
const client = new Client({ name: 'list-changed-test', version: '1.0.0' });
let notified;
const changed = new Promise((resolve) => { notified = resolve; });
client.setNotificationHandler(ToolListChangedNotificationSchema, () => notified(true));
try {
  await client.connect(transport);
  const before = (await client.listTools()).tools.map((t) => t.name);
  console.log(JSON.stringify({ ready: true, tools: before, capabilities: client.getServerCapabilities() }));
  const got = await Promise.race([changed, new Promise((r) => setTimeout(() => r(false), timeout))]);
  const after = (await client.listTools()).tools.map((t) => t.name);
  console.log(JSON.stringify({ notified: got, tools: after }));
  if (mode !== 'stdio') await transport.terminateSession();
  await client.close();
} catch (e) {
  console.log(JSON.stringify({ error: String(e && e.message) }));
}
process.exit(0);
