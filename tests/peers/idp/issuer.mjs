// A real OpenID provider (npm `oidc-provider`, certified) for Portcullis' runtime-auth tests.
//
// Env: PORT (required), KID (suffix of the key ids, change it to rotate keys), SCOPES (what the
// resource servers grant). Resources (RFC 8707 indicators; each one is also the token `aud`):
//   https://runtime.local/api        JWT access tokens signed RS256
//   https://runtime.local/api-es     JWT access tokens signed ES256
//   https://other.local/api          JWT access tokens for a sibling app (wrong audience)
//   https://runtime.local/opaque-api opaque tokens (introspection, revocation)
//   https://runtime.local/short-api  JWT access tokens living SHORT_TTL seconds (default 2)
// Clients:
//   runtime-client  client_secret_basic, client credentials
//   post-client     client_secret_post, client credentials
//   code-client     client_secret_basic, authorization code (+ PKCE) and refresh tokens, which
//                   are always issued and rotated on every use; redirect URI REDIRECT_URI
//                   (default https://portcullis.test/v1/oauth/callback). A person's login and
//                   consent are the provider's devInteractions forms (POST /interaction/<uid>
//                   with prompt=login&login=<account>, then prompt=consent), which tests drive
//                   with plain HTTP requests.
// AUTH_METHODS (optional, comma-separated): the token endpoint's client authentication methods,
// as listed in discovery's token_endpoint_auth_methods_supported; clients registered for another
// method are left out.
// MCP_RESOURCE_AUDIENCE (optional): an indicator naming a loopback `/mcp` resource (the RFC 9728
// `resource` of a runtime's MCP door, whose port is chosen at test time) gets RS256 JWT access
// tokens for this audience, as an authorization server maps a resource indicator to its API.
// GET /test/counts returns {"discovery": n, "<grant_type>": n, ...}: how many discovery
// documents were served and tokens issued per grant type, for single-flight and cache tests.
// Prints `issuer <url> ready` once listening.
import Provider, { errors } from 'oidc-provider';
import { generateKeyPairSync } from 'node:crypto';

const PORT = Number(process.env.PORT);
const KID = process.env.KID || 'a';
const SCOPES = process.env.SCOPES || 'tools:read';
const RESOURCES = {
  'https://runtime.local/api': ['jwt', 'RS256'],
  'https://runtime.local/api-es': ['jwt', 'ES256'],
  'https://other.local/api': ['jwt', 'RS256'],
  'https://runtime.local/opaque-api': ['opaque', 'RS256'],
  'https://runtime.local/short-api': ['jwt', 'RS256', Number(process.env.SHORT_TTL || 2)],
};
const MCP_AUDIENCE = process.env.MCP_RESOURCE_AUDIENCE;
const AUTH_METHODS = process.env.AUTH_METHODS ? process.env.AUTH_METHODS.split(',') : null;
const REDIRECT_URI = process.env.REDIRECT_URI || 'https://portcullis.test/v1/oauth/callback';
const jwk = (t, o, kid, alg) => ({ ...generateKeyPairSync(t, o).privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' });
const provider = new Provider(`http://127.0.0.1:${PORT}`, {
  jwks: { keys: [jwk('rsa', { modulusLength: 2048 }, `rsa-${KID}`, 'RS256'), jwk('ec', { namedCurve: 'P-256' }, `ec-${KID}`, 'ES256')] },
  ...(AUTH_METHODS ? { clientAuthMethods: AUTH_METHODS } : {}),
  clients: [
    { client_id: 'runtime-client', client_secret: 'runtime-secret', grant_types: ['client_credentials'],
      redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic' },
    { client_id: 'post-client', client_secret: 'post-secret', grant_types: ['client_credentials'],
      redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_post' },
    { client_id: 'code-client', client_secret: 'code-secret', grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [REDIRECT_URI], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' },
  ].filter((c) => !AUTH_METHODS || AUTH_METHODS.includes(c.token_endpoint_auth_method)),
  issueRefreshToken: async (ctx, client) => client.clientId === 'code-client',
  rotateRefreshToken: true,
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'https://runtime.local/api',
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => {
        if (MCP_AUDIENCE && /^http:\/\/127\.0\.0\.1:\d+\/mcp$/.test(indicator)) {
          return { scope: SCOPES, audience: MCP_AUDIENCE, accessTokenTTL: 600,
            accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
        }
        const found = RESOURCES[indicator];
        if (!found) throw new errors.InvalidTarget();
        return { scope: SCOPES, audience: indicator, accessTokenTTL: found[2] || 600,
          accessTokenFormat: found[0], jwt: { sign: { alg: found[1] } } };
      },
    },
  },
});
const counts = {};
const count = (name) => { counts[name] = (counts[name] || 0) + 1; };
provider.on('grant.success', (ctx) => count(ctx.oidc.params.grant_type));
provider.use(async (ctx, next) => {
  if (ctx.path === '/test/counts') {
    ctx.body = counts;
    return;
  }
  if (ctx.path === '/.well-known/openid-configuration') count('discovery');
  await next();
});
provider.listen(PORT, '127.0.0.1', () => console.log(`issuer ${provider.issuer} ready`));
