// Test key material for Portcullis' JWT tests: prints one JSON object with, per key, the
// PKCS#8 private key (PEM), the public JWK and the public key (SPKI PEM, for alg-confusion tests).
import { generateKeyPairSync } from 'node:crypto';
const make = (type, options) => {
  const { privateKey, publicKey } = generateKeyPairSync(type, options);
  return {
    pem: privateKey.export({ format: 'pem', type: 'pkcs8' }),
    jwk: publicKey.export({ format: 'jwk' }),
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }),
  };
};
console.log(JSON.stringify({
  rsa: make('rsa', { modulusLength: 2048 }),
  rsa2: make('rsa', { modulusLength: 2048 }),
  weak: make('rsa', { modulusLength: 1024 }),
  ec: make('ec', { namedCurve: 'P-256' }),
  ed: make('ed25519', {}),
}));
