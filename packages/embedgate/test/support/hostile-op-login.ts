// Sign-in endpoints of the hostile OP (/authorize, /token, /userinfo): a correct authorization-code flow with PKCE and
// client authentication, except for whatever the test's scenario makes go wrong, with every request recorded.
import { createHash, KeyObject, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodeProtectedHeader, jwtVerify, type CryptoKey, type ProtectedHeaderParameters } from 'jose';
import type { SignOptions } from './hostile-op.js';

export const AUTHORIZE_PATH = '/authorize';
export const TOKEN_PATH = '/token';
export const USERINFO_PATH = '/userinfo';
export const DEFAULT_CLIENT_ID = 'gateway';
export const DEFAULT_CLIENT_SECRET = 'hostile-op-client-secret-0123456789';
export const DEFAULT_SUBJECT = 'user-1';

const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const DEFAULT_EXPIRES_IN = 300;
const MAX_BODY_BYTES = 64 * 1024;

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';

/** The one client the OP knows. */
export interface OpClient {
  clientId: string;
  method: ClientAuthMethod;
  /** For client_secret_basic and client_secret_post. */
  secret?: string;
  /** For private_key_jwt: the public key client assertions must verify with. */
  publicKey?: CryptoKey | KeyObject;
}

/** What the OP's side of the flow does wrong in the authorization response. */
export interface AuthorizationScenario {
  /** RFC 9207 iss: undefined → the issuer when discovery advertises it, null → none, a string → that value. */
  iss?: string | null;
  /** undefined → the request's state, null → none, a string → that value. */
  state?: string | null;
  /** An error response (error, error_description, …) instead of a code. */
  error?: Record<string, string>;
}

export interface TokenContext {
  grantType: 'authorization_code' | 'refresh_token';
  /** The user the sign-in is for. */
  subject: string;
  /** The parameters of the authorization request the code (or the refresh token's sign-in) came from. */
  authorization: Readonly<Record<string, string>>;
}

/** How one token response deviates from a correct one. */
export interface TokenScenario {
  idToken?: {
    /** Merged over iss, sub, aud (client id), iat, exp, auth_time, nonce and sid; an undefined value removes the claim. */
    claims?: Record<string, unknown>;
    /** Default RS256 with the "rsa" key. */
    sign?: SignOptions;
    /** Rewrites the signed token (bad signatures, alg none). */
    tamper?: (jwt: string) => string;
    omit?: boolean;
  };
  accessToken?: { claims?: Record<string, unknown>; sign?: SignOptions };
  /** Default "Bearer". */
  tokenType?: string;
  /** Lifetime of the access token (its exp and expires_in); default 300. */
  expiresIn?: number;
  /** false: no refresh token. */
  refreshToken?: false;
  /** An OAuth error response instead of tokens. */
  error?: { status?: number; error: string; description?: string };
}

export interface UserInfoContext {
  subject: string;
  accessToken: string;
}

export interface UserInfoAnswer {
  status?: number;
  headers?: Record<string, string>;
  body: unknown;
}

export interface LoginBehaviour {
  client: OpClient;
  /** The user /authorize signs in, without asking anything. */
  subject: string;
  authorizationResponse: AuthorizationScenario;
  token: (ctx: TokenContext) => TokenScenario | Promise<TokenScenario>;
  userinfo: (ctx: UserInfoContext) => UserInfoAnswer;
  /** false: the token endpoint ignores code_verifier, like an OP without PKCE. */
  checkPkce: boolean;
  /** false: a code can be redeemed again. */
  oneTimeCodes: boolean;
}

export interface AuthorizationRecord {
  params: Record<string, string>;
  /** The code issued, if any. */
  code?: string;
}

export interface TokenRequestRecord {
  params: Record<string, string>;
  authorization?: string;
  /** The method the client authenticated with; undefined when it failed. */
  clientAuth?: ClientAuthMethod;
  /** The header of a private_key_jwt client assertion. */
  assertionHeader?: ProtectedHeaderParameters;
  /** The OAuth error answered, if any. */
  error?: string;
}

export interface UserInfoRecord {
  authorization?: string;
}

export interface HostileLogin {
  readonly authorizations: readonly AuthorizationRecord[];
  readonly tokenRequests: readonly TokenRequestRecord[];
  readonly userinfoRequests: readonly UserInfoRecord[];
  readonly behaviour: Readonly<LoginBehaviour>;
  /** Changes part of the behaviour for the next requests. */
  set(behaviour: Partial<LoginBehaviour>): void;
  /** Back to a well-behaved OP and the default client; issued codes and tokens are forgotten, the records kept. */
  reset(): void;
}

/** What the login endpoints need from the OP around them. */
export interface LoginHost {
  readonly url: string;
  readonly issuer: string;
  /** The audience of the access tokens (the gateway's). */
  readonly audience: string;
  sign(payload: object, opts?: SignOptions): Promise<string>;
  /** Whether discovery advertises authorization_response_iss_parameter_supported. */
  advertisesIss(): boolean;
}

/** The discovery fields of the sign-in endpoints. */
export function loginMetadata(url: string): Record<string, unknown> {
  return {
    authorization_endpoint: `${url}${AUTHORIZE_PATH}`,
    token_endpoint: `${url}${TOKEN_PATH}`,
    userinfo_endpoint: `${url}${USERINFO_PATH}`,
    response_types_supported: ['code'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    subject_types_supported: ['public'],
    code_challenge_methods_supported: ['S256'],
    authorization_response_iss_parameter_supported: true,
    id_token_signing_alg_values_supported: ['RS256', 'PS256', 'ES256', 'EdDSA'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
  };
}

export function defaultLoginBehaviour(): LoginBehaviour {
  return {
    client: { clientId: DEFAULT_CLIENT_ID, method: 'client_secret_basic', secret: DEFAULT_CLIENT_SECRET },
    subject: DEFAULT_SUBJECT,
    authorizationResponse: {},
    token: () => ({}),
    userinfo: ({ subject }) => ({ body: { sub: subject, email: `${subject}@example.com`, email_verified: true } }),
    checkPkce: true,
    oneTimeCodes: true,
  };
}

interface Grant {
  subject: string;
  authorization: Record<string, string>;
  used: boolean;
  refreshToken?: string;
}

class OAuthError extends Error {
  constructor(readonly status: number, readonly error: string) {
    super(error);
  }
}

export class LoginEndpoints implements HostileLogin {
  readonly authorizations: AuthorizationRecord[] = [];
  readonly tokenRequests: TokenRequestRecord[] = [];
  readonly userinfoRequests: UserInfoRecord[] = [];
  behaviour = defaultLoginBehaviour();
  private codes = new Map<string, Grant>();
  private refreshTokens = new Map<string, Grant>();
  private accessTokens = new Map<string, string>();
  private readonly assertionIds = new Set<string>();

  constructor(private readonly host: LoginHost) {}

  set(behaviour: Partial<LoginBehaviour>): void {
    this.behaviour = { ...this.behaviour, ...behaviour };
  }

  reset(): void {
    this.behaviour = defaultLoginBehaviour();
    this.codes = new Map();
    this.refreshTokens = new Map();
    this.accessTokens = new Map();
  }

  /** Answers a sign-in endpoint; false for any other path. */
  serve(path: string, req: IncomingMessage, res: ServerResponse): boolean {
    const handler = path === AUTHORIZE_PATH ? this.authorize : path === TOKEN_PATH ? this.token : path === USERINFO_PATH ? this.userinfo : undefined;
    if (handler === undefined) return false;
    handler.call(this, req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`hostile-op: ${(error as Error).message}`);
    });
    return true;
  }

  private async authorize(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const params = Object.fromEntries(new URL(req.url ?? '', this.host.url).searchParams);
    const record: AuthorizationRecord = { params };
    this.authorizations.push(record);
    const { client, subject, authorizationResponse: scenario } = this.behaviour;
    if (params.client_id !== client.clientId || params.response_type !== 'code' || params.redirect_uri === undefined) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('invalid authorization request');
      return;
    }
    const answer = new URL(params.redirect_uri);
    if (scenario.error === undefined) {
      record.code = randomToken();
      this.codes.set(record.code, { subject, authorization: params, used: false });
      answer.searchParams.set('code', record.code);
    } else {
      for (const [name, value] of Object.entries(scenario.error)) answer.searchParams.set(name, value);
    }
    const state = scenario.state === undefined ? params.state : scenario.state;
    if (state != null) answer.searchParams.set('state', state);
    const iss = scenario.iss === undefined ? (this.host.advertisesIss() ? this.host.issuer : null) : scenario.iss;
    if (iss !== null) answer.searchParams.set('iss', iss);
    res.writeHead(302, { location: answer.href, 'cache-control': 'no-store' }).end();
  }

  private async token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const params = Object.fromEntries(new URLSearchParams(await readBody(req)));
    const record: TokenRequestRecord = { params, ...(req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization }) };
    this.tokenRequests.push(record);
    try {
      if (req.method !== 'POST') throw new OAuthError(405, 'invalid_request');
      record.clientAuth = await this.authenticateClient(req, params, record);
      const grant = this.redeem(params);
      const ctx: TokenContext = {
        grantType: params.grant_type === 'refresh_token' ? 'refresh_token' : 'authorization_code',
        subject: grant.subject,
        authorization: grant.authorization,
      };
      const scenario = await this.behaviour.token(ctx);
      if (scenario.error !== undefined) {
        const { status = 400, error, description } = scenario.error;
        record.error = error;
        sendJson(res, status, { error, ...(description === undefined ? {} : { error_description: description }) });
        return;
      }
      sendJson(res, 200, await this.tokens(ctx, grant, scenario));
    } catch (error) {
      if (!(error instanceof OAuthError)) throw error;
      record.error = error.error;
      sendJson(res, error.status, { error: error.error }, error.status === 401 ? { 'www-authenticate': 'Basic realm="hostile-op"' } : {});
    }
  }

  private async userinfo(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const authorization = req.headers.authorization;
    this.userinfoRequests.push(authorization === undefined ? {} : { authorization });
    const accessToken = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1] ?? '';
    const subject = this.accessTokens.get(accessToken);
    if (subject === undefined) {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
      return;
    }
    const answer = this.behaviour.userinfo({ subject, accessToken });
    sendJson(res, answer.status ?? 200, answer.body, answer.headers);
  }

  /** The client's authentication as registered, or 401 invalid_client. */
  private async authenticateClient(req: IncomingMessage, params: Record<string, string>, record: TokenRequestRecord): Promise<ClientAuthMethod> {
    const { client } = this.behaviour;
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    let ok = false;
    switch (client.method) {
      case 'client_secret_basic': {
        const [id = '', secret = ''] = Buffer.from(basic ?? '', 'base64').toString('utf8').split(':').map((part) => decodeURIComponent(part));
        ok = basic !== undefined && id === client.clientId && secret === client.secret && params.client_secret === undefined;
        break;
      }
      case 'client_secret_post':
        ok = basic === undefined && params.client_id === client.clientId && params.client_secret === client.secret;
        break;
      case 'private_key_jwt':
        ok = basic === undefined && params.client_secret === undefined && await this.verifyAssertion(params, record);
        break;
      case 'none':
        ok = basic === undefined && params.client_id === client.clientId && params.client_secret === undefined;
        break;
    }
    if (!ok) throw new OAuthError(401, 'invalid_client');
    return client.method;
  }

  private async verifyAssertion(params: Record<string, string>, record: TokenRequestRecord): Promise<boolean> {
    const { client } = this.behaviour;
    const assertion = params.client_assertion;
    if (params.client_assertion_type !== CLIENT_ASSERTION_TYPE || assertion === undefined || client.publicKey === undefined) return false;
    try {
      record.assertionHeader = decodeProtectedHeader(assertion);
      const { payload } = await jwtVerify(assertion, client.publicKey, {
        issuer: client.clientId,
        subject: client.clientId,
        audience: [this.host.issuer, `${this.host.url}${TOKEN_PATH}`],
        requiredClaims: ['exp', 'jti'],
        maxTokenAge: '5m',
      });
      if (params.client_id !== undefined && params.client_id !== client.clientId) return false;
      const jti = String(payload.jti);
      if (this.assertionIds.has(jti)) return false;
      this.assertionIds.add(jti);
      return true;
    } catch {
      return false;
    }
  }

  /** The sign-in a code or refresh token stands for; 400 invalid_grant for anything else. */
  private redeem(params: Record<string, string>): Grant {
    if (params.grant_type === 'refresh_token') {
      const grant = this.refreshTokens.get(params.refresh_token ?? '');
      if (grant === undefined) throw new OAuthError(400, 'invalid_grant');
      return grant;
    }
    if (params.grant_type !== 'authorization_code') throw new OAuthError(400, 'unsupported_grant_type');
    const grant = this.codes.get(params.code ?? '');
    if (grant === undefined || (grant.used && this.behaviour.oneTimeCodes)) throw new OAuthError(400, 'invalid_grant');
    if (params.redirect_uri !== grant.authorization.redirect_uri) throw new OAuthError(400, 'invalid_grant');
    if (this.behaviour.checkPkce && !pkceMatches(grant.authorization, params.code_verifier)) throw new OAuthError(400, 'invalid_grant');
    grant.used = true;
    return grant;
  }

  private async tokens(ctx: TokenContext, grant: Grant, scenario: TokenScenario): Promise<Record<string, unknown>> {
    const { issuer, audience } = this.host;
    const clientId = this.behaviour.client.clientId;
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = scenario.expiresIn ?? DEFAULT_EXPIRES_IN;
    const scope = grant.authorization.scope ?? 'openid';
    const accessToken = await this.host.sign(withClaims({
      iss: issuer, sub: ctx.subject, aud: audience, iat: now, exp: now + expiresIn, client_id: clientId, scope,
      roles: ['analyst'], jti: randomToken(),
    }, scenario.accessToken?.claims), { typ: 'at+jwt', ...scenario.accessToken?.sign });
    this.accessTokens.set(accessToken, ctx.subject);
    const body: Record<string, unknown> = { access_token: accessToken, token_type: scenario.tokenType ?? 'Bearer', expires_in: expiresIn, scope };
    if (scenario.idToken?.omit !== true) {
      const codeGrant = ctx.grantType === 'authorization_code';
      const signed = await this.host.sign(withClaims({
        iss: issuer, sub: ctx.subject, aud: clientId, iat: now, exp: now + DEFAULT_EXPIRES_IN, sid: `sid-${ctx.subject}`,
        ...(codeGrant ? { auth_time: now, nonce: grant.authorization.nonce } : {}),
      }, scenario.idToken?.claims), { typ: 'JWT', ...scenario.idToken?.sign });
      body.id_token = scenario.idToken?.tamper?.(signed) ?? signed;
    }
    if (scenario.refreshToken !== false) {
      // Not rotated: one refresh token serves its sign-in until reset(), as with many providers.
      grant.refreshToken ??= randomToken();
      this.refreshTokens.set(grant.refreshToken, grant);
      body.refresh_token = grant.refreshToken;
    }
    return body;
  }
}

/** Whether code_verifier is a valid RFC 7636 S256 verifier for the authorization request's challenge. */
function pkceMatches(authorization: Record<string, string>, verifier: string | undefined): boolean {
  if (verifier === undefined || !/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) return false;
  if (authorization.code_challenge_method !== 'S256') return false;
  return createHash('sha256').update(verifier).digest('base64url') === authorization.code_challenge;
}

/** `base` with `overrides` applied; an undefined override removes the claim. */
function withClaims(base: Record<string, unknown>, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return Object.fromEntries(Object.entries({ ...base, ...overrides }).filter(([, value]) => value !== undefined));
}

function randomToken(): string {
  return randomBytes(24).toString('base64url');
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }).end(JSON.stringify(body));
}
