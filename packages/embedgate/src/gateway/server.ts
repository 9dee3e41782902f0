// The gateway: an HTTP server that authenticates, authorizes and proxies every request to its app.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.js';
import { configWarnings } from '../config/warnings.js';
import { sessionHandleOf } from '../embed/worker-credentials.js';
import { rawHeaderProblem } from '../http/headers.js';
import { normalizeTarget } from '../http/path.js';
import { isNavigation, sendDenial, type Denial } from '../http/respond.js';
import { AssertionSigner } from '../identity/assertion.js';
import type { Identity } from '../identity/identity.js';
import { AccessLog } from '../ops/access-log.js';
import { listenOn } from '../ops/listen.js';
import { createLogger } from '../ops/logger.js';
import { GatewayMetrics } from '../ops/metrics.js';
import { parseDashOutputs } from '../policy/dash.js';
import { TokenVerifier } from '../tokens/verifier.js';
import { AccessControl, type AuditContext, type Decision } from './access.js';
import { AppTable, type MountedApp } from './apps.js';
import { readBody } from './body.js';
import { TrustedProxies, type ClientAddress } from './client-address.js';
import { isOwnPath, serveOperational } from './endpoints.js';
import { forwardAuth } from './forward-auth.js';
import { Embedding } from '../embed/embedding.js';
import { Sessions } from '../sessions/sessions.js';
import { SESSION_STORE_DENIAL, SessionStoreUnavailableError } from '../sessions/errors.js';
import { openSessionStore, sessionStoreOf } from '../sessions/open.js';
import type { CryptoKey } from 'jose';
import { BACKCHANNEL_LOGOUT_PATH, handleBackchannelLogout } from '../login/backchannel.js';
import { CALLBACK_PATH, SIGN_IN_PATH } from '../login/flow.js';
import { setUpLogin, type Login } from '../login/login.js';
import { handleLogout, LOGOUT_PATH } from '../login/logout.js';
import { loadClientKey, PROVIDER_UNAVAILABLE } from '../login/provider.js';
import { IdpUnavailableError } from '../tokens/errors.js';
import { UpstreamProxy } from './proxy.js';
import { upstreamHeaders } from './upstream-headers.js';
import { refuseUpgrade, WebSocketProxy } from './websocket.js';

export interface GatewayOptions {
  logger?: Logger;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const SESSION_SWEEP_MS = 10 * 60 * 1000;

/** A browser opening an app page in a tab (not a frame, not a script) with no live session: time to sign in. */
function startsSignIn(req: IncomingMessage, denial: Denial): boolean {
  return (denial.error === 'missing_token' || denial.error === 'session_expired') && req.method === 'GET'
    && isNavigation(req) && (req.headers['sec-fetch-dest'] ?? 'document') === 'document';
}

function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** A request for an app, as the handler's steps pass it on once the app is known. */
interface AppRequest {
  req: IncomingMessage;
  res: ServerResponse;
  app: MountedApp;
  /** The query string, with its "?" (or empty). */
  query: string;
  client: ClientAddress;
  /** Request id, client address, method and normalized path. */
  context: AuditContext;
}

export class Gateway {
  readonly server: Server;
  readonly metrics = new GatewayMetrics();
  readonly logger: Logger;
  private readonly verifier: TokenVerifier;
  private readonly access: AccessControl;
  private readonly apps: AppTable;
  private readonly proxies: TrustedProxies;
  private readonly upstream: UpstreamProxy;
  private readonly websockets: WebSocketProxy;
  private readonly embedding: Embedding;
  private readonly allowedOrigins: Set<string>;
  private readonly login: Login | undefined;
  /** One line per request (`access_log`), or undefined when that is off. */
  private readonly accessLog: AccessLog | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Responses not yet finished, so that a shutdown can end their keep-alive connections once they are. */
  private readonly inFlight = new Set<ServerResponse>();
  private draining = false;

  private constructor(
    readonly config: GatewayConfig,
    private readonly assertions: AssertionSigner,
    private readonly sessions: Sessions,
    clientKey: CryptoKey | undefined,
    logger: Logger,
  ) {
    this.logger = logger;
    this.accessLog = config.access_log ? new AccessLog(logger) : undefined;
    this.verifier = new TokenVerifier({
      issuers: config.issuers,
      maxTokenBytes: config.max_token_bytes,
      cacheSize: config.verified_token_cache_size,
      logger,
      registry: this.metrics.registry,
      onFetch: (issuer, kind, result) => this.metrics.idpFetches.inc({ issuer, kind, result }),
    });
    const ownOrigin = new URL(config.public_url).origin;
    this.login = setUpLogin(config, clientKey, this.verifier, sessions, logger);
    this.access = new AccessControl(this.verifier, sessions, this.login?.lifecycle, ownOrigin, this.metrics, logger);
    this.apps = new AppTable(config.apps);
    this.proxies = new TrustedProxies(config.trusted_proxies);
    this.upstream = new UpstreamProxy(this.metrics, logger);
    this.websockets = new WebSocketProxy(this.metrics, logger, sessions);
    this.embedding = new Embedding({ config, verifier: this.verifier, access: this.access, sessions, apps: this.apps, logger });
    this.allowedOrigins = new Set([...config.embed.allowed_origins, new URL(config.public_url).origin]);
    this.server = createServer({ requestTimeout: 120_000, headersTimeout: 30_000, keepAliveTimeout: 65_000 }, (req, res) => {
      this.trackForShutdown(res);
      try {
        const rest = this.handle(req, res);
        if (rest) rest.catch((error: unknown) => this.fail(req, res, error));
      } catch (error) {
        this.fail(req, res, error);
      }
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.handleUpgrade(req, socket, head).catch((error: unknown) => {
        if (error instanceof SessionStoreUnavailableError || error instanceof IdpUnavailableError) {
          this.logger.warn({ err: error.message }, 'session cannot be checked');
          return refuseUpgrade(socket, error instanceof IdpUnavailableError ? PROVIDER_UNAVAILABLE : SESSION_STORE_DENIAL);
        }
        this.logger.error({ err: (error as Error).message }, 'upgrade handling failed');
        refuseUpgrade(socket, { status: 500, error: 'internal_error', message: 'The gateway failed to handle this request.' });
      });
    });
  }

  static async create(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
    const logger = options.logger ?? createLogger(config.log_level);
    const keyFile = resolve(config.assertion.key_file ?? resolve(config.data_dir, 'assertion-key.json'));
    const assertions = await AssertionSigner.create(keyFile, config.public_url, config.assertion.ttl_seconds);
    const clientKey = config.login === undefined ? undefined : await loadClientKey(config.login);
    const store = await openSessionStore(sessionStoreOf(config));
    return new Gateway(config, assertions, new Sessions(store, config.embed.session_ttl_seconds), clientKey, logger);
  }

  /** Starts listening on `listen` (or the given port) and starts loading issuer keys in the background. */
  async listen(): Promise<{ url: string; port: number }> {
    this.verifier.start();
    this.login?.provider.start();
    this.sweepTimer = setInterval(() => {
      this.sessions.sweep().catch((error: unknown) => this.logger.warn({ err: (error as Error).message }, 'session sweep failed'));
    }, SESSION_SWEEP_MS);
    this.sweepTimer.unref();
    await listenOn(this.server, this.config.listen);
    const address = this.server.address() as AddressInfo;
    const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.logger.info({ listen: `${shownHost}:${address.port}`, apps: this.config.apps.map((a) => a.prefix) }, 'embedgate gateway listening');
    for (const warning of configWarnings(this.config)) this.logger.warn({ config: warning }, 'configuration warning');
    // Start-up lines go out at once; later lines are batched (ops/logger.ts).
    this.logger.flush();
    return { url: `http://${shownHost}:${address.port}`, port: address.port };
  }

  /**
   * Stops accepting connections, lets requests in flight finish for up to `drainMs`, then cuts what is
   * left (WebSockets are closed at once with 1001 "going away").
   */
  async close(drainMs = 0): Promise<void> {
    this.verifier.stop();
    clearInterval(this.sweepTimer);
    this.websockets.close();
    this.draining = true;
    for (const res of this.inFlight) this.endConnectionAfter(res);
    const closed = new Promise<void>((done) => this.server.close(() => done()));
    this.server.closeIdleConnections();
    const deadline = setTimeout(() => this.server.closeAllConnections(), drainMs);
    await closed;
    clearTimeout(deadline);
    await this.upstream.close();
    await this.sessions.close();
  }

  /**
   * A draining gateway answers what it has accepted but keeps no connection open for more: otherwise keep-alive
   * clients under steady load would go on sending requests until the drain deadline cut them off mid-answer.
   */
  private trackForShutdown(res: ServerResponse): void {
    if (this.draining) return this.endConnectionAfter(res);
    this.inFlight.add(res);
    // 'close' and 'finish' come once per response: `on` spares the wrapper `once` makes.
    res.on('close', () => this.inFlight.delete(res));
  }

  /** Ends the response's connection once it is answered: `Connection: close` if its head is not out yet. */
  private endConnectionAfter(res: ServerResponse): void {
    if (!res.headersSent) res.shouldKeepAlive = false;
    else res.once('close', () => this.server.closeIdleConnections());
  }

  get ready(): boolean {
    return this.verifier.ready;
  }

  private fail(req: IncomingMessage, res: ServerResponse, error: unknown): void {
    if ((error instanceof SessionStoreUnavailableError || error instanceof IdpUnavailableError) && !res.headersSent) {
      this.logger.warn({ err: error.message }, 'session cannot be checked');
      return sendDenial(req, res, error instanceof IdpUnavailableError ? PROVIDER_UNAVAILABLE : SESSION_STORE_DENIAL, requestIdOf(req));
    }
    this.logger.error({ err: (error as Error).message }, 'request handling failed');
    if (!res.headersSent) {
      res.writeHead(500, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ error: 'internal_error', message: 'The gateway failed to handle this request.' }));
    } else {
      res.destroy();
    }
  }

  private deny(req: IncomingMessage, res: ServerResponse, denial: Denial, context: AuditContext, app?: MountedApp, identity?: Identity): void {
    this.access.audit(denial, context, app?.config.name, identity);
    this.metrics.requests.inc({ app: app?.config.name ?? '-', outcome: denial.status === 401 ? 'unauthenticated' : denial.status === 403 ? 'forbidden' : 'rejected' });
    sendDenial(req, res, denial, context.requestId);
  }

  /**
   * Answers one request. One whose token or embed session is known in memory is decided and sent to its app within
   * this call, without a promise; the rest (a token to verify, a session to read, a callback body, an assertion to
   * sign, the gateway's own endpoints) continue in the promise returned.
   */
  private handle(req: IncomingMessage, res: ServerResponse): Promise<void> | void {
    const started = process.hrtime.bigint();
    const requestId = requestIdOf(req);
    const client = this.proxies.resolve(req);
    const method = req.method ?? 'GET';
    const context: AuditContext = { requestId, ip: client.ip, method, path: '' };
    if (this.accessLog !== undefined) res.on('finish', () => this.logRequest(res, context, started));

    const headerProblem = rawHeaderProblem(req.rawHeaders);
    if (headerProblem !== undefined) {
      return this.deny(req, res, { status: 400, ...headerProblem }, context);
    }
    const target = normalizeTarget(req.url ?? '');
    if (!target.ok) {
      return this.deny(req, res, { status: target.reason === 'uri_too_long' ? 414 : 400, error: target.reason, message: `The request path was refused: ${target.detail}.` }, context);
    }
    context.path = target.path;
    if (isOwnPath(target.path)) return this.serveOwn(target.path, req, res, client, context);

    const match = this.apps.match(target.path);
    if (match.kind === 'none') {
      return this.deny(req, res, { status: 404, error: 'no_app', message: 'No app is mounted at this path.' }, context);
    }
    if (match.kind === 'redirect') {
      res.writeHead(308, { location: `${match.location}${target.query}`, 'cache-control': 'no-store' });
      res.end();
      return;
    }
    const request: AppRequest = { req, res, app: match.app, query: target.query, client, context };
    const known = this.access.decideFromMemory(req, match.app, target.path, method);
    if (known !== undefined) return this.proceed(request, known);
    return this.access.decide(req, match.app, target.path, method).then((decision) => this.proceed(request, decision));
  }

  /** Carries out the decision on a request for an app: a denial (or sign-in, or the bootstrap page), else on to the app. */
  private proceed(request: AppRequest, decision: Decision): Promise<void> | void {
    const { req, res, app, context } = request;
    if (decision.kind === 'deny') {
      if (this.embedding.answersWithBootstrap(req, decision.denial)) {
        this.metrics.requests.inc({ app: app.config.name, outcome: 'bootstrap' });
        return this.embedding.sendBootstrap(req, res, decision.denial, app.config);
      }
      if (this.login !== undefined && startsSignIn(req, decision.denial)) {
        this.metrics.requests.inc({ app: app.config.name, outcome: 'login' });
        return this.login.flow.start(req, res, `${context.path}${request.query}`, context.requestId);
      }
      return this.deny(req, res, decision.denial, context, app, decision.identity);
    }
    const identity = decision.kind === 'allow' ? decision.identity : undefined;
    if (identity !== undefined && app.policy.inspectsCallback(context.path, context.method)) return this.inspectThenForward(request, identity);
    return this.forward(request, identity, undefined);
  }

  /** A Dash callback: its body is read and checked against the callback rules before it goes on. */
  private async inspectThenForward(request: AppRequest, identity: Identity): Promise<void> {
    const inspected = await this.inspectCallback(request.req, request.app, identity);
    if ('denial' in inspected) return this.deny(request.req, request.res, inspected.denial, request.context, request.app, identity);
    return this.forward(request, identity, inspected.body);
  }

  /** Sends the request on to its app with the identity headers; an assertion not signed yet is signed first. */
  private forward(request: AppRequest, identity: Identity | undefined, body: Buffer | undefined): Promise<void> | void {
    const { app } = request;
    if (identity === undefined || !app.config.identity_headers.includes('assertion')) return this.send(request, identity, body, undefined);
    const assertion = this.assertions.knownAssertion(identity, app.config.name);
    if (assertion !== undefined) return this.send(request, identity, body, assertion);
    return this.assertions.assertionFor(identity, app.config.name).then((signed) => this.send(request, identity, body, signed));
  }

  /** Hands the request with its upstream headers to the app's pool; the relay answers the caller, failures included. */
  private send(request: AppRequest, identity: Identity | undefined, body: Buffer | undefined, assertion: string | undefined): void {
    const { req, res, app, context } = request;
    const headers = upstreamHeaders(req, request.client, context.requestId, app.config.forward_authorization, identity, assertion, app.config.identity_headers);
    this.metrics.requests.inc({ app: app.config.name, outcome: identity === undefined ? 'public' : 'proxied' });
    this.upstream.forward(req, res, {
      app, path: AppTable.upstreamPath(app, context.path, request.query), headers, body, requestId: context.requestId,
      rewrite: this.embedding.responseRewrite(identity, app.config, identity !== undefined && sessionHandleOf(req) !== undefined),
      signedIn: identity !== undefined,
    });
  }

  /** The gateway's own endpoints: operational ones, forward-auth, sign-in and embedding; 404 for any other. */
  private async serveOwn(path: string, req: IncomingMessage, res: ServerResponse, client: ClientAddress, context: AuditContext): Promise<void> {
    if (await serveOperational(path, res, {
      verifier: this.verifier, metrics: this.metrics, assertions: this.assertions,
      ...(this.login === undefined ? {} : { loginProvider: this.login.provider }),
    })) return;
    if (path === '/_embedgate/auth') {
      return forwardAuth(req, res, { context, client, access: this.access, apps: this.apps, assertions: this.assertions, deny: (d, app, id) => this.deny(req, res, d, context, app, id) });
    }
    if (this.login !== undefined && await this.serveLogin(path, req, res, context)) return;
    const deny = (denial: Denial, identity?: Identity): void => this.deny(req, res, denial, context, undefined, identity);
    if (await this.embedding.serve(path, req, res, deny)) return;
    return this.deny(req, res, { status: 404, error: 'not_found', message: 'There is no such gateway endpoint.' }, context);
  }

  /** The sign-in endpoints: callback, sign-in, sign-out and back-channel logout; false for any other path. */
  private async serveLogin(path: string, req: IncomingMessage, res: ServerResponse, context: AuditContext): Promise<boolean> {
    const login = this.login as Login;
    const method = req.method ?? 'GET';
    if (path === CALLBACK_PATH && method === 'GET') await login.flow.callback(req, res, context.requestId);
    else if (path === SIGN_IN_PATH && method === 'GET') await login.flow.signIn(req, res, context.requestId);
    else if (path === LOGOUT_PATH) {
      await handleLogout(req, res, {
        login: login.config, provider: login.provider, sessions: this.sessions,
        sameOrigin: (request) => this.access.sameOrigin(request), deny: (denial) => this.deny(req, res, denial, context),
      });
    } else if (path === BACKCHANNEL_LOGOUT_PATH) {
      await handleBackchannelLogout(req, res, { login: login.config, verifier: this.verifier, sessions: this.sessions, logger: this.logger });
    } else return false;
    return true;
  }

  /** Reads a Dash callback body and checks every output it names against the callback rules. */
  private async inspectCallback(req: IncomingMessage, app: MountedApp, identity: Identity): Promise<{ body: Buffer } | { denial: Denial }> {
    if (req.headers['content-encoding'] !== undefined && req.headers['content-encoding'] !== 'identity') {
      return { denial: { status: 415, error: 'unsupported_content_encoding', message: 'Callback requests must not be compressed.' } };
    }
    const read = await readBody(req, app.policy.dashMaxBodyBytes);
    if (!read.ok) {
      return read.tooLarge
        ? { denial: { status: 413, error: 'body_too_large', message: 'The callback request is larger than this app allows.' } }
        : { denial: { status: 400, error: 'incomplete_body', message: 'The request body could not be read.' } };
    }
    const parsed = parseDashOutputs(read.body);
    if (!parsed.ok) return { denial: { status: 400, error: 'malformed_callback', message: `The Dash callback request is malformed: ${parsed.detail}.` } };
    const denial = app.policy.authorizeOutputs(identity, parsed.outputs);
    return denial === undefined ? { body: read.body } : { denial };
  }

  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const requestId = requestIdOf(req);
    const client = this.proxies.resolve(req);
    const context: AuditContext = { requestId, ip: client.ip, method: 'WEBSOCKET', path: '' };
    const refuse = (denial: Denial, app?: MountedApp, identity?: Identity): void => {
      this.access.audit(denial, context, app?.config.name, identity);
      refuseUpgrade(socket, denial);
    };
    const target = normalizeTarget(req.url ?? '');
    if (!target.ok) return refuse({ status: 400, error: target.reason, message: `The request path was refused: ${target.detail}.` });
    context.path = target.path;
    const headerProblem = rawHeaderProblem(req.rawHeaders);
    if (headerProblem !== undefined) return refuse({ status: 400, ...headerProblem });
    const match = this.apps.match(target.path);
    if (match.kind !== 'app' || !match.app.config.websockets) return refuse({ status: 404, error: 'no_app', message: 'No WebSocket app is mounted at this path.' });
    const { app } = match;
    const origin = req.headers.origin;
    if (origin !== undefined && !this.allowedOrigins.has(origin)) {
      return refuse({ status: 403, error: 'origin_not_allowed', message: 'WebSocket connections from this origin are not allowed.' }, app);
    }
    const decision = await this.access.decide(req, app, target.path, 'GET');
    if (decision.kind === 'deny') return refuse(decision.denial, app, decision.identity);
    const identity = decision.kind === 'allow' ? decision.identity : undefined;
    const headers = upstreamHeaders(req, client, requestId, app.config.forward_authorization, identity,
      identity && app.config.identity_headers.includes('assertion') ? await this.assertions.assertionFor(identity, app.config.name) : undefined,
      app.config.identity_headers);
    this.websockets.forward(req, socket, head, {
      app, path: AppTable.upstreamPath(app, target.path, target.query), headers, expiresAt: identity?.expiresAt,
      ...(decision.kind === 'allow' && decision.sessionId !== undefined ? { sessionId: decision.sessionId } : {}),
    });
  }

  private logRequest(res: ServerResponse, context: AuditContext, started: bigint): void {
    this.accessLog?.write({
      requestId: context.requestId,
      method: context.method,
      path: context.path,
      status: res.statusCode,
      ms: Number(process.hrtime.bigint() - started) / 1e6,
      ip: context.ip,
    });
  }
}
