// A real OpenID provider (npm `oidc-provider`, certified) for Portcullis' runtime-auth tests.
//
// Env: PORT (required), KID (suffix of the key ids, change it to rotate keys), SCOPES (what the
// resource servers grant). Resources (RFC 8707 indicators; each one is also the token `aud`):
//   https://runtime.local/api        JWT access tokens signed RS256
//   https://runtime.local/api-es     JWT access tokens signed ES256
//   https://other.local/api          JWT access tokens for a sibling app (wrong audience)
//   https://runtime.local/opaque-api opaque tokens (introspection, revocation)
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
};
const jwk = (t, o, kid, alg) => ({ ...generateKeyPairSync(t, o).privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' });
const provider = new Provider(`http://127.0.0.1:${PORT}`, {
  jwks: { keys: [jwk('rsa', { modulusLength: 2048 }, `rsa-${KID}`, 'RS256'), jwk('ec', { namedCurve: 'P-256' }, `ec-${KID}`, 'ES256')] },
  clients: [{ client_id: 'runtime-client', client_secret: 'runtime-secret', grant_types: ['client_credentials'],
    redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic' }],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'https://runtime.local/api',
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => {
        const found = RESOURCES[indicator];
        if (!found) throw new errors.InvalidTarget();
        return { scope: SCOPES, audience: indicator, accessTokenTTL: 600,
          accessTokenFormat: found[0], jwt: { sign: { alg: found[1] } } };
      },
    },
  },
});
provider.listen(PORT, '127.0.0.1', () => console.log(`issuer ${provider.issuer} ready`));
