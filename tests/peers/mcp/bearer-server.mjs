// A streamable-HTTP MCP server that requires bearer tokens from the test identity provider
// (tests/peers/idp/issuer.mjs), built with the official MCP TypeScript SDK. Used by the
// transport-OAuth tests: every request must carry a JWT access token signed by the issuer's
// keys, issued by that issuer, for AUDIENCE; anything else gets 401 with a challenge.
//
// Env: PORT (required), ISSUER (required), AUDIENCE (default https://runtime.local/api).
// Tools: `whoami` (returns the token's client_id and scope) and `add-tool` (registers a tool
// named `added`, so the SDK announces notifications/tools/list_changed on the GET stream).
// Prints `mcp ready` once listening.
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const PORT = Number(process.env.PORT);
const ISSUER = process.env.ISSUER;
const AUDIENCE = process.env.AUDIENCE || 'https://runtime.local/api';
const jwks = createRemoteJWKSet(new URL(`${ISSUER}/jwks`));
const sessions = new Map();

function newSession() {
  const server = new McpServer({ name: 'bearer-test', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Who the bearer token names', inputSchema: {} },
    async (_args, extra) => ({
      content: [{ type: 'text', text: JSON.stringify(extra.authInfo?.extra ?? {}) }],
    }));
  server.registerTool('add-tool', { description: 'Registers the tool `added`', inputSchema: {} },
    async () => {
      if (!server._addedTool) {
        server._addedTool = server.registerTool('added', { description: 'Added at runtime', inputSchema: {} },
          async () => ({ content: [{ type: 'text', text: 'added' }] }));
      }
      return { content: [{ type: 'text', text: 'ok' }] };
    });
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    onsessioninitialized: (id) => sessions.set(id, transport),
  });
  server.connect(transport);
  return transport;
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

createServer(async (req, res) => {
  const header = req.headers.authorization || '';
  let claims;
  try {
    if (!header.startsWith('Bearer ')) throw new Error('no bearer token');
    ({ payload: claims } = await jwtVerify(header.slice(7), jwks, { issuer: ISSUER, audience: AUDIENCE }));
  } catch {
    res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
    return;
  }
  req.auth = { token: header.slice(7), clientId: claims.client_id, scopes: [], extra: { clientId: claims.client_id, scope: claims.scope } };
  const body = req.method === 'POST' ? await readBody(req) : undefined;
  const id = req.headers['mcp-session-id'];
  let transport = id ? sessions.get(id) : undefined;
  if (id && !transport) { res.writeHead(404).end(); return; }
  if (!transport) transport = newSession();
  await transport.handleRequest(req, res, body);
}).listen(PORT, '127.0.0.1', () => console.log('mcp ready'));
