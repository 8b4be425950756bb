// Drive Portcullis' MCP door with the official MCP TypeScript SDK client, for
// host/tests/it/mcp_door.rs. Connects, lists tools, calls each of CALLS, ends the session, and
// prints one JSON line: {protocolVersion, sessionId, serverInfo, tools, results: [{result} |
// {error}], terminated} or {error} when connecting failed.
//
// Usage: node tests/peers/mcp/door-client.mjs http <url of /mcp>
//        node tests/peers/mcp/door-client.mjs stdio <portcullis binary>   (runs `mcp stdio`)
//        node tests/peers/mcp/door-client.mjs discover <url of /mcp>      (401 -> RFC 9728 metadata,
//          with the SDK's own discovery functions; prints {status, resourceMetadataUrl, metadata})
// Env: TOKEN (a bearer token), or CLIENT_ID, CLIENT_SECRET, SCOPE (the SDK's OAuth client
// credentials flow: 401 -> protected-resource metadata -> authorization server -> token);
// CALLS (JSON array of {name, arguments}).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { discoverOAuthProtectedResourceMetadata, extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';

const [mode, target] = process.argv.slice(2);
const calls = JSON.parse(process.env.CALLS || '[]');
const failure = (e) => ({ message: String(e && e.message), code: e && e.code });

if (mode === 'discover') {
  const response = await fetch(target, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  const { resourceMetadataUrl, error } = extractWWWAuthenticateParams(response);
  const metadata = await discoverOAuthProtectedResourceMetadata(new URL(target), { resourceMetadataUrl });
  console.log(JSON.stringify({ status: response.status, error, resourceMetadataUrl: String(resourceMetadataUrl), metadata }));
  process.exit(0);
}

let transport;
if (mode === 'stdio') {
  transport = new StdioClientTransport({ command: target, args: ['mcp', 'stdio'], env: process.env, stderr: 'ignore' });
} else {
  const options = {};
  if (process.env.TOKEN) options.requestInit = { headers: { Authorization: `Bearer ${process.env.TOKEN}` } };
  if (process.env.CLIENT_ID) {
    options.authProvider = new ClientCredentialsProvider({
      clientId: process.env.CLIENT_ID, clientSecret: process.env.CLIENT_SECRET, scope: process.env.SCOPE,
    });
  }
  transport = new StreamableHTTPClientTransport(new URL(target), options);
}
const client = new Client({ name: 'door-test', version: '1.2.3' });
const out = {};
try {
  await client.connect(transport);
  out.protocolVersion = transport.protocolVersion ?? null;
  out.sessionId = transport.sessionId ?? null;
  out.serverInfo = client.getServerVersion();
  out.tools = (await client.listTools()).tools;
  out.results = [];
  for (const call of calls) {
    try {
      out.results.push({ result: await client.callTool(call) });
    } catch (e) {
      out.results.push({ error: failure(e) });
    }
  }
  if (mode !== 'stdio') {
    await transport.terminateSession();
    out.terminated = true;
  }
  await client.close();
} catch (e) {
  out.error = failure(e);
}
console.log(JSON.stringify(out));
process.exit(0);
