// A controllable, misbehaving OpenID provider that forges tokens and serves rigged discovery/JWKS documents for security
// tests, with sign-in endpoints (see hostile-op-login.ts) whose answers each test shapes.
import { createHmac, generateKeyPair as generateNodeKeyPair, KeyObject, sign as nodeSign } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { CompactSign, exportJWK, generateKeyPair, type CompactJWSHeaderParameters, type CryptoKey, type JWK } from 'jose';
import { LoginEndpoints, loginMetadata, type HostileLogin } from './hostile-op-login.js';

export type KeyName = 'rsa' | 'rsa2' | 'rsaPss' | 'ec' | 'ed' | 'rsa1024';

export interface TestKey {
  kid: string;
  alg: string;
  /** Public JWK including kid, use "sig" and alg: exactly what the JWKS endpoint publishes. */
  publicJwk: JWK;
  publicKey: CryptoKey | KeyObject;
  privateKey: CryptoKey | KeyObject;
}

export type SigningKey = CryptoKey | KeyObject | Uint8Array;

export interface SignOptions {
  /** Default RS256. */
  alg?: string;
  /** null omits the kid header; default is the named key's kid (none for raw keys). */
  kid?: string | null;
  /** A key name or a raw private key / HMAC secret; default is the key matching alg. */
  key?: KeyName | SigningKey;
  /** Extra protected header fields, applied last (so they can override alg, kid and typ). */
  header?: Record<string, unknown>;
  typ?: string;
}

export type FailureMode = null | 'status500' | 'html' | 'invalid-json' | 'hang';

export interface RecordedOpRequest {
  method: string;
  /** The raw request target, query included. */
  path: string;
}

export interface HostileOpOptions {
  issuerOverride?: string;
  audience?: string;
}

export interface HostileOp {
  readonly url: string;
  readonly issuer: string;
  readonly audience: string;
  readonly keys: Readonly<Record<KeyName, TestKey>>;
  /** The "rsa" public key as SPKI PEM, PKCS#1 PEM and SPKI DER (for alg-confusion secrets). */
  readonly publicPem: string;
  readonly publicPkcs1Pem: string;
  readonly publicDer: Buffer;
  readonly discoveryRequests: number;
  readonly jwksRequests: number;
  readonly requests: readonly RecordedOpRequest[];
  /** /authorize, /token and /userinfo: their behaviour and what they received. */
  readonly login: HostileLogin;
  /** Typical valid claims; an override whose value is undefined removes that claim. */
  claims(overrides?: Record<string, unknown>): Record<string, unknown>;
  sign(payload: object, opts?: SignOptions): Promise<string>;
  /** An HS256 JWT MACed by hand; header defaults to { alg: "HS256" }. */
  hmac(header: object, payload: object, secret: Uint8Array | string): string;
  /** Base64url-joins the segments without signing (alg "none", bad signatures, truncation). */
  unsigned(header: object, payload: object, signature?: string): string;
  /** Merged over the default discovery document (an undefined value removes a field); null restores the default. */
  setDiscovery(overrides: Record<string, unknown> | null): void;
  setDiscoveryFailure(mode: FailureMode): void;
  /** Moves the JWKS endpoint (and the discovery document's jwks_uri). */
  setJwksPath(path: string): void;
  /** Serves this document instead of the published keys; null goes back to the published keys. */
  setJwks(jwks: object | null): void;
  setJwksFailure(mode: FailureMode): void;
  publish(name: KeyName): void;
  unpublish(name: KeyName): void;
  close(): Promise<void>;
}

const DEFAULT_AUDIENCE = 'http://127.0.0.1:4180';
const DISCOVERY_PATH = '/.well-known/openid-configuration';
const DEFAULT_PUBLISHED: readonly KeyName[] = ['rsa', 'rsaPss', 'ec', 'ed'];
const DEFAULT_KEY_FOR_ALG: Readonly<Partial<Record<string, KeyName>>> = { RS256: 'rsa', PS256: 'rsaPss', ES256: 'ec', EdDSA: 'ed' };
// jose refuses RSA keys below this size, so smaller ones are signed by hand.
const JOSE_MIN_RSA_BITS = 2048;

export async function startHostileOp(opts: HostileOpOptions = {}): Promise<HostileOp> {
  const keys = await generateKeys();
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return new HostileOpServer(server, url, opts.issuerOverride ?? url, opts.audience ?? DEFAULT_AUDIENCE, keys);
}

class HostileOpServer implements HostileOp {
  readonly url: string;
  readonly issuer: string;
  readonly audience: string;
  readonly keys: Readonly<Record<KeyName, TestKey>>;
  readonly publicPem: string;
  readonly publicPkcs1Pem: string;
  readonly publicDer: Buffer;
  discoveryRequests = 0;
  jwksRequests = 0;
  readonly requests: RecordedOpRequest[] = [];
  readonly login: LoginEndpoints;
  private discoveryOverrides: Record<string, unknown> | null = null;
  private discoveryFailure: FailureMode = null;
  private jwksPath = '/jwks';
  private customJwks: object | null = null;
  private jwksFailure: FailureMode = null;
  private readonly published = new Set<KeyName>(DEFAULT_PUBLISHED);
  private readonly server: Server;

  constructor(server: Server, url: string, issuer: string, audience: string, keys: Record<KeyName, TestKey>) {
    this.server = server;
    this.url = url;
    this.issuer = issuer;
    this.audience = audience;
    this.keys = keys;
    const rsaPublic = toKeyObject(keys.rsa.publicKey);
    this.publicPem = rsaPublic.export({ type: 'spki', format: 'pem' }).toString();
    this.publicPkcs1Pem = rsaPublic.export({ type: 'pkcs1', format: 'pem' }).toString();
    this.publicDer = rsaPublic.export({ type: 'spki', format: 'der' });
    this.login = new LoginEndpoints({
      url, issuer, audience,
      sign: (payload, opts) => this.sign(payload, opts),
      advertisesIss: () => (this.discoveryDocument() as Record<string, unknown>).authorization_response_iss_parameter_supported === true,
    });
    server.on('request', (req, res) => this.handle(req, res));
  }

  claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    const now = Math.floor(Date.now() / 1000);
    const merged: Record<string, unknown> = {
      iss: this.issuer, sub: 'user-1', aud: this.audience, iat: now, exp: now + 300, roles: ['analyst'], ...overrides,
    };
    return Object.fromEntries(Object.entries(merged).filter(([, value]) => value !== undefined));
  }

  async sign(payload: object, opts: SignOptions = {}): Promise<string> {
    const alg = opts.alg ?? 'RS256';
    const { key, kid: defaultKid } = this.resolveSigningKey(opts.key, alg);
    const kid = opts.kid === undefined ? defaultKid : opts.kid;
    const header: CompactJWSHeaderParameters = {
      alg,
      ...(opts.typ !== undefined && { typ: opts.typ }),
      ...(kid != null && { kid }),
      ...opts.header,
    };
    if (isWeakRsaKey(key)) return signRs256ByHand(header, payload, key);
    return new CompactSign(jsonBytes(payload)).setProtectedHeader(header).sign(key, { crit: acceptedCrit(header) });
  }

  hmac(header: object, payload: object, secret: Uint8Array | string): string {
    const signingInput = `${encodeSegment({ alg: 'HS256', ...header })}.${encodeSegment(payload)}`;
    return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
  }

  unsigned(header: object, payload: object, signature = ''): string {
    return `${encodeSegment(header)}.${encodeSegment(payload)}.${signature}`;
  }

  setDiscovery(overrides: Record<string, unknown> | null): void {
    this.discoveryOverrides = overrides;
  }

  setDiscoveryFailure(mode: FailureMode): void {
    this.discoveryFailure = mode;
  }

  setJwksPath(path: string): void {
    this.jwksPath = path;
  }

  setJwks(jwks: object | null): void {
    this.customJwks = jwks;
  }

  setJwksFailure(mode: FailureMode): void {
    this.jwksFailure = mode;
  }

  publish(name: KeyName): void {
    this.published.add(name);
  }

  unpublish(name: KeyName): void {
    this.published.delete(name);
  }

  async close(): Promise<void> {
    const closed = new Promise((resolve) => this.server.close(resolve));
    this.server.closeAllConnections();
    await closed;
  }

  private resolveSigningKey(key: KeyName | SigningKey | undefined, alg: string): { key: SigningKey; kid?: string } {
    if (key !== undefined && typeof key !== 'string') return { key };
    const name = key ?? DEFAULT_KEY_FOR_ALG[alg];
    if (name === undefined) throw new Error(`hostile-op: no default key for alg ${alg}; pass opts.key`);
    return { key: this.keys[name].privateKey, kid: this.keys[name].kid };
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const target = req.url ?? '';
    this.requests.push({ method: req.method ?? '', path: target });
    const path = target.split('?')[0] ?? '';
    if (path === DISCOVERY_PATH) {
      this.discoveryRequests += 1;
      respond(res, this.discoveryFailure, this.discoveryDocument());
    } else if (path === this.jwksPath) {
      this.jwksRequests += 1;
      respond(res, this.jwksFailure, this.currentJwks());
    } else if (!this.login.serve(path, req, res)) {
      res.writeHead(404).end();
    }
  }

  private discoveryDocument(): object {
    return {
      issuer: this.issuer,
      jwks_uri: `${this.url}${this.jwksPath}`,
      ...loginMetadata(this.url),
      ...this.discoveryOverrides,
    };
  }

  private currentJwks(): object {
    return this.customJwks ?? { keys: [...this.published].map((name) => this.keys[name].publicJwk) };
  }
}

function respond(res: ServerResponse, failure: FailureMode, document: object): void {
  switch (failure) {
    case null:
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(document));
      return;
    case 'status500':
      res.writeHead(500, { 'content-type': 'text/plain' }).end('internal server error');
      return;
    case 'html':
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>not json</body></html>');
      return;
    case 'invalid-json':
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": [');
      return;
    case 'hang':
      return; // left open until close() destroys the connection
  }
}

async function generateKeys(): Promise<Record<KeyName, TestKey>> {
  const [rsa, rsa2, rsaPss, ec, ed, rsa1024] = await Promise.all([
    generateJoseKey('RS256', 'rsa-1'),
    generateJoseKey('RS256', 'rsa-2'),
    generateJoseKey('PS256', 'rsa-ps'),
    generateJoseKey('ES256', 'ec-1'),
    generateJoseKey('EdDSA', 'ed-1'),
    generateWeakRsaKey('rsa-1024'),
  ]);
  return { rsa, rsa2, rsaPss, ec, ed, rsa1024 };
}

async function generateJoseKey(alg: string, kid: string): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, publicKey, privateKey, publicJwk: await publicJwk(publicKey, kid, alg) };
}

async function generateWeakRsaKey(kid: string): Promise<TestKey> {
  const { publicKey, privateKey } = await promisify(generateNodeKeyPair)('rsa', { modulusLength: 1024 });
  return { kid, alg: 'RS256', publicKey, privateKey, publicJwk: await publicJwk(publicKey, kid, 'RS256') };
}

async function publicJwk(publicKey: CryptoKey | KeyObject, kid: string, alg: string): Promise<JWK> {
  return { ...(await exportJWK(publicKey)), kid, use: 'sig', alg };
}

function toKeyObject(key: CryptoKey | KeyObject): KeyObject {
  return key instanceof KeyObject ? key : KeyObject.from(key);
}

function isWeakRsaKey(key: SigningKey): key is CryptoKey | KeyObject {
  if (key instanceof Uint8Array) return false;
  const bits = toKeyObject(key).asymmetricKeyDetails?.modulusLength;
  return bits !== undefined && bits < JOSE_MIN_RSA_BITS;
}

function signRs256ByHand(header: CompactJWSHeaderParameters, payload: object, key: CryptoKey | KeyObject): string {
  if (header.alg !== 'RS256') throw new Error(`hostile-op: keys under ${JOSE_MIN_RSA_BITS} bits can only sign RS256`);
  const signingInput = `${encodeSegment(header)}.${encodeSegment(payload)}`;
  return `${signingInput}.${nodeSign('sha256', Buffer.from(signingInput), toKeyObject(key)).toString('base64url')}`;
}

// Lets tests forge tokens carrying any "crit" extension: jose refuses to sign unrecognised ones.
function acceptedCrit(header: CompactJWSHeaderParameters): Record<string, boolean> {
  const names: unknown[] = Array.isArray(header.crit) ? header.crit : [];
  return Object.fromEntries(names.map((name) => [String(name), true]));
}

function jsonBytes(value: object): Buffer {
  return Buffer.from(JSON.stringify(value));
}

function encodeSegment(value: object): string {
  return jsonBytes(value).toString('base64url');
}
