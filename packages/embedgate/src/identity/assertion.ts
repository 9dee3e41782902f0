// Signs the identity assertion sent upstream (X-Embedgate-Assertion) with a persisted ES256 key.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { Identity } from './identity.js';

const ALG = 'ES256';

interface SigningKey {
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/** Loads the key file, or creates it (mode 0600) on first start so restarts keep the same key. */
async function loadOrCreateKey(file: string): Promise<SigningKey> {
  let jwk: JWK | undefined;
  try {
    jwk = JSON.parse(readFileSync(file, 'utf8')) as JWK;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read the assertion key ${file}: ${(error as Error).message}`);
  }
  if (jwk === undefined) {
    const { privateKey } = await generateKeyPair(ALG, { extractable: true });
    jwk = await exportJWK(privateKey);
    jwk.kid = await calculateJwkThumbprint(jwk);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(jwk)}\n`, { mode: 0o600, flag: 'wx' });
  }
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string') throw new Error(`the assertion key ${file} must be a P-256 private JWK`);
  const privateKey = await importJWK({ ...jwk, alg: ALG }, ALG) as CryptoKey;
  const { d: _private, ...publicJwk } = jwk;
  publicJwk.kid ??= await calculateJwkThumbprint(publicJwk);
  return { privateKey, publicJwk: { ...publicJwk, alg: ALG, use: 'sig' } };
}

interface CachedAssertion {
  /** The signed assertion, or its signing in flight: concurrent first requests of one identity share one signing. */
  jwt: Promise<string>;
  /** The assertion once signed. */
  signed?: string;
  renewAt: number;
}

export class AssertionSigner {
  private readonly cache = new WeakMap<Identity, Map<string, CachedAssertion>>();

  private constructor(private readonly key: SigningKey, private readonly issuer: string, private readonly ttlSeconds: number) {}

  static async create(keyFile: string, issuer: string, ttlSeconds: number): Promise<AssertionSigner> {
    return new AssertionSigner(await loadOrCreateKey(keyFile), issuer, ttlSeconds);
  }

  /** The public keys for `/_embedgate/jwks.json`. */
  jwks(): { keys: JWK[] } {
    return { keys: [this.key.publicJwk] };
  }

  /** An assertion for one app; reused for the same verified identity until half its life is gone. */
  assertionFor(identity: Identity, app: string): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    let perApp = this.cache.get(identity);
    const hit = perApp?.get(app);
    if (hit !== undefined && hit.renewAt > now) return hit.jwt;
    const exp = Math.min(now + this.ttlSeconds, identity.expiresAt);
    const entry: CachedAssertion = { jwt: this.sign(identity, app, now, exp), renewAt: now + Math.floor((exp - now) / 2) };
    if (perApp === undefined) {
      perApp = new Map();
      this.cache.set(identity, perApp);
    }
    perApp.set(app, entry);
    entry.jwt.then((jwt) => {
      entry.signed = jwt;
    }, () => {
      // A failed signing is not kept: the next request tries again.
      if (perApp.get(app) === entry) perApp.delete(app);
    });
    return entry.jwt;
  }

  /** What assertionFor() would give, when it is signed already and still fresh; undefined otherwise. */
  knownAssertion(identity: Identity, app: string): string | undefined {
    const hit = this.cache.get(identity)?.get(app);
    return hit !== undefined && hit.renewAt > Math.floor(Date.now() / 1000) ? hit.signed : undefined;
  }

  private sign(identity: Identity, app: string, now: number, exp: number): Promise<string> {
    return new SignJWT({
      email: identity.email,
      roles: [...identity.roles],
      idp: identity.issuer,
    })
      .setProtectedHeader({ alg: ALG, kid: this.key.publicJwk.kid as string, typ: 'embedgate-assertion+jwt' })
      .setIssuer(this.issuer)
      .setSubject(identity.subject)
      .setAudience(app)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(this.key.privateKey);
  }
}
