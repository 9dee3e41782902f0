// The embedded identity provider: an HTTP server in front of oidc-provider, its pages and its store.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import { sendJson } from '../http/respond.js';
import { listenOn } from '../ops/listen.js';
import { createLogger } from '../ops/logger.js';
import { Accounts } from './accounts.js';
import type { IdpConfig } from './config.js';
import { Interactions } from './interactions.js';
import { createProvider, TOKEN_POLICIES } from './provider.js';
import { structuredTokenEndpoints } from './structured-tokens.js';
import { RateLimiter } from './rate-limit.js';
import { activeSigningKeys, ensureSigningKey } from './signing-keys.js';
import { openIdpStore } from './store/open.js';
import type { IdpStore } from './store/types.js';

export interface IdpOptions {
  logger?: Logger;
  /** Directory relative sqlite paths are resolved against (default: the working directory). */
  baseDir?: string;
}

const SWEEP_INTERVAL_MS = 10 * 60 * 1000;
/** Extra time a retired signing key stays published after the last token it signed has expired. */
const RETIRED_KEY_MARGIN_MS = 5 * 60 * 1000;

const randomSecret = (): string => randomBytes(32).toString('base64url');

interface LoadedProvider {
  provider: Provider;
  callback: (req: IncomingMessage, res: ServerResponse) => void;
  /** The signing key ids it was built with, to notice a rotation. */
  kids: string;
}

interface BuildDeps {
  config: IdpConfig;
  store: IdpStore;
  accounts: Accounts;
  cookieKeys: string[];
  tokenRequests: RateLimiter;
  logger: Logger;
}

/** The policy for everything oidc-provider answers itself: no framing, nothing loaded, inline scripts only by hash. */
const PROVIDER_CSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'";

/**
 * True for requests oidc-provider routes to its token endpoint: its router ignores case and one trailing slash,
 * so `/TOKEN` and `/token/` must count against the same budget as `/token`.
 */
function isTokenEndpoint(path: string): boolean {
  const folded = path.toUpperCase();
  return folded === '/TOKEN' || folded === '/TOKEN/';
}

function keepRetiredMs(config: IdpConfig): number {
  return Math.max(config.access_token_ttl_seconds, config.id_token_ttl_seconds) * 1000 + RETIRED_KEY_MARGIN_MS;
}

/** Builds the oidc-provider instance from the current signing keys, with rate limiting and anti-framing headers. */
async function buildProvider(deps: BuildDeps): Promise<LoadedProvider> {
  const signingKeys = await activeSigningKeys(deps.store, keepRetiredMs(deps.config));
  const provider = await createProvider({ ...deps, signingKeys });
  // oidc-provider reports these only as events; without listeners a failed back-channel logout or an internal
  // error would leave no trace. Only client ids and error messages are logged, never tokens.
  provider.on('server_error', (_ctx, error) => deps.logger.error({ err: error.message }, 'identity provider error'));
  // Errors that escape oidc-provider's own handlers reach Koa, which would print them to stderr unformatted.
  // (Provider is a Koa application; its typings only list oidc-provider's own events.)
  (provider as unknown as NodeJS.EventEmitter).on('error', (error: Error & { expose?: boolean }) => {
    if (error.expose === true) deps.logger.debug({ err: error.message }, 'identity provider request refused');
    else deps.logger.error({ err: error.message }, 'identity provider request failed');
  });
  provider.on('backchannel.error', (_ctx, error, client) => {
    deps.logger.warn({ audit: 'backchannel_logout_failed', client: client.clientId, err: error.message }, 'back-channel logout failed');
  });
  provider.on('backchannel.success', (_ctx, client) => {
    deps.logger.info({ audit: 'backchannel_logout', client: client.clientId }, 'back-channel logout delivered');
  });
  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && isTokenEndpoint(ctx.path) && !deps.tokenRequests.allow(ctx.ip)) {
      ctx.status = 429;
      ctx.set('retry-after', '60');
      ctx.body = { error: 'slow_down', error_description: 'too many token requests; try again later' };
      return;
    }
    // Set before the route runs: oidc-provider's own auto-submitting pages (form_post responses, /device?user_code=,
    // logout without a session) add the hash of their inline script to script-src; the IdP's pages replace it.
    ctx.set('content-security-policy', PROVIDER_CSP);
    await next();
    ctx.set('x-frame-options', 'DENY');
  });
  provider.use(structuredTokenEndpoints(provider, signingKeys, TOKEN_POLICIES));
  return { provider, callback: provider.callback(), kids: signingKeys.map((key) => key.kid).join(',') };
}

export class IdentityProvider {
  readonly server: Server;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly interactions: Interactions;

  private constructor(
    readonly config: IdpConfig,
    private readonly deps: BuildDeps,
    private loaded: LoadedProvider,
    csrfSecret: string,
    readonly logger: Logger,
  ) {
    const firstParty = new Set(config.clients.filter((client) => !client.consent).map((client) => client.client_id));
    this.interactions = new Interactions(() => this.loaded.provider, deps.accounts, config, csrfSecret, firstParty, logger);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        logger.error({ err: (error as Error).message }, 'request failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: 'the identity provider failed to handle the request' });
      });
    });
  }

  static async create(config: IdpConfig, options: IdpOptions = {}): Promise<IdentityProvider> {
    const logger = options.logger ?? createLogger(config.log_level);
    const store = await openIdpStore(config.store, options.baseDir);
    try {
      const accounts = new Accounts(store, config.roles_claim);
      await accounts.seed(config.users);
      await ensureSigningKey(store);
      for (const client of config.clients) {
        if (client.client_secret !== undefined && client.client_secret.length < 16) {
          logger.warn({ client: client.client_id }, 'client secret is shorter than 16 characters; use a long random secret in production');
        }
      }
      const deps: BuildDeps = {
        config,
        store,
        accounts,
        cookieKeys: [await store.secret('cookie-key', randomSecret)],
        tokenRequests: new RateLimiter(config.token_requests_per_minute, 60_000),
        logger,
      };
      return new IdentityProvider(config, deps, await buildProvider(deps), await store.secret('csrf-key', randomSecret), logger);
    } catch (error) {
      await store.close();
      throw error;
    }
  }

  /** Picks up keys added by `embedgate idp rotate-keys` (from any process sharing the store). */
  private async reloadIfKeysChanged(): Promise<void> {
    await this.deps.store.pruneSigningKeys(Date.now() - keepRetiredMs(this.config));
    const kids = (await this.deps.store.listSigningKeys()).map((key) => key.kid).join(',');
    if (kids === this.loaded.kids) return;
    this.loaded = await buildProvider(this.deps);
    this.logger.info({ kids: this.loaded.kids }, 'signing keys changed; provider reloaded');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] as string;
    if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (path.startsWith('/interaction/') && await this.interactions.handle(req, res, path)) return;
    this.loaded.callback(req, res);
  }

  async listen(): Promise<{ url: string; port: number }> {
    await listenOn(this.server, this.config.listen);
    const every = (ms: number, task: () => Promise<unknown>): void => {
      const timer = setInterval(() => {
        task().catch((error: unknown) => this.logger.warn({ err: (error as Error).message }, 'background task failed'));
      }, ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(this.config.key_check_seconds * 1000, () => this.reloadIfKeysChanged());
    every(SWEEP_INTERVAL_MS, () => this.deps.store.sweepExpired());
    const address = this.server.address() as AddressInfo;
    this.logger.info({ issuer: this.config.issuer, listen: `${address.address}:${address.port}` }, 'embedgate identity provider listening');
    // Start-up lines go out at once; later lines are batched (ops/logger.ts).
    this.logger.flush();
    return { url: `http://${address.address}:${address.port}`, port: address.port };
  }

  /** Stops accepting connections and lets requests in flight finish for up to `drainMs`. */
  async close(drainMs = 0): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const deadline = setTimeout(() => this.server.closeAllConnections(), drainMs);
    await closed;
    clearTimeout(deadline);
    await this.deps.store.close();
  }
}
