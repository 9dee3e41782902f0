// The bench's own token issuer: an RSA key made with jose, discovery and JWKS over HTTP on loopback, RS256 access tokens.
import { KeyObject, randomUUID, type webcrypto } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

/** The audience every bench gateway and the Express stack expect. */
export const AUDIENCE = 'https://embedgate.bench/api';
const KID = 'bench-rsa-1';

export interface Issuer {
  /** The issuer URL (no trailing slash): `iss`, and where discovery lives. */
  issuer: string;
  publicKey: KeyObject;
  /** An RS256 access token for an analyst (claims like an IdP's), valid for an hour unless overridden. */
  sign(claims?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export async function startIssuer(): Promise<Issuer> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
  const jwk = { ...(await exportJWK(publicKey)), kid: KID, alg: 'RS256', use: 'sig' };
  const server = createServer((req, res) => {
    const documents: Record<string, unknown> = {
      // Only what the verifiers read: no sign-in endpoints, the bench signs its tokens itself.
      '/.well-known/openid-configuration': { issuer, jwks_uri: `${issuer}/jwks`, id_token_signing_alg_values_supported: ['RS256'] },
      '/jwks': { keys: [jwk] },
    };
    const document = documents[req.url ?? ''];
    res.writeHead(document === undefined ? 404 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(document ?? { error: 'not_found' }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    publicKey: KeyObject.from(publicKey as webcrypto.CryptoKey),
    sign: (claims = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({
        sub: 'auth0|5f7c8ec7c33c6c004bbafe82', azp: 'bench-portal', scope: 'openid profile email',
        email: 'ana.lyst@example.com', email_verified: true, roles: ['analyst'], jti: randomUUID(), ...claims,
      })
        .setProtectedHeader({ alg: 'RS256', kid: KID, typ: 'at+jwt' })
        .setIssuer(issuer)
        .setAudience(AUDIENCE)
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .sign(privateKey);
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
