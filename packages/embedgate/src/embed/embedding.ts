// Everything the gateway does for apps in cross-site frames: session endpoint, SDK scripts, bootstrap, response rewriting.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { AppConfig, GatewayConfig } from '../config/schema.js';
import type { AccessControl } from '../gateway/access.js';
import type { AppTable } from '../gateway/apps.js';
import type { ResponseRewrite } from '../gateway/proxy.js';
import type { Denial } from '../http/respond.js';
import type { Identity } from '../identity/identity.js';
import type { TokenVerifier } from '../tokens/verifier.js';
import { EmbedAssets } from './assets.js';
import { clearedSessionCookie } from './cookies.js';
import { sendBootstrap } from './bootstrap.js';
import {
  BOOTSTRAP_SCRIPT_PATH, BRIDGE_SCRIPT_PATH, bridgeScriptTag, FRAME_SCRIPT_PATH, frameScriptTag, injectIntoHtml, rewriteEmbedHeaders,
  WORKER_PAGE_SCRIPT_PATH, workerPageScriptTag,
} from './html.js';
import { handleSessionRequest } from './session-endpoint.js';
import { handleTicketRequest } from './ticket-endpoint.js';
import type { Sessions } from '../sessions/sessions.js';
import { workerNavigationOf } from './worker-credentials.js';

const SESSION_PATH = '/_embedgate/session';
const TICKET_PATH = '/_embedgate/ws-ticket';

export interface EmbeddingDeps {
  config: GatewayConfig;
  verifier: TokenVerifier;
  access: AccessControl;
  sessions: Sessions;
  apps: AppTable;
  logger: Logger;
}

export class Embedding {
  private readonly origins: string[];
  private readonly hostOrigins: ReadonlySet<string>;
  private readonly frameAncestors: string;
  private readonly scriptUrl: string;
  /** the frame script's versioned path, which the browser may cache for good */
  private readonly scriptSrc: string;
  /** the bootstrap script's text, inlined in bootstrap pages */
  private readonly bootstrapSource: string;
  /** worker mode's page script (versioned path) */
  private readonly workerPageSrc: string;
  /** the bridge's app-side script (versioned path) */
  private readonly bridgeSrc: string;
  private readonly origin: string;
  private readonly sessionUrl: string;
  private readonly assets: EmbedAssets | undefined;
  /** With embedding off, responses only get the framing headers; one rewrite serves every request. */
  private readonly framingOnly: ResponseRewrite;
  /** The header options of every response that is not an HTML page: the framing policy alone. */
  private readonly framingOptions: { frameAncestors: string };

  constructor(private readonly deps: EmbeddingDeps) {
    this.origins = deps.config.embed.allowed_origins;
    this.hostOrigins = new Set(this.origins);
    this.frameAncestors = this.origins.length > 0 ? this.origins.join(' ') : "'none'";
    this.framingOptions = { frameAncestors: this.frameAncestors };
    this.framingOnly = { headers: (headers) => rewriteEmbedHeaders(headers, this.framingOptions) };
    const origin = new URL(deps.config.public_url).origin;
    this.scriptUrl = `${origin}${FRAME_SCRIPT_PATH}`;
    this.sessionUrl = `${origin}${SESSION_PATH}`;
    try {
      this.assets = new EmbedAssets();
    } catch (error) {
      deps.logger.warn({ err: (error as Error).message }, 'the embed SDK scripts are not built; embedding is unavailable (run npm run build)');
    }
    this.scriptSrc = this.assets?.versionedPath(FRAME_SCRIPT_PATH) ?? FRAME_SCRIPT_PATH;
    this.workerPageSrc = this.assets?.versionedPath(WORKER_PAGE_SCRIPT_PATH) ?? WORKER_PAGE_SCRIPT_PATH;
    this.bridgeSrc = this.assets?.versionedPath(BRIDGE_SCRIPT_PATH) ?? BRIDGE_SCRIPT_PATH;
    this.origin = origin;
    this.bootstrapSource = this.assets?.source(BOOTSTRAP_SCRIPT_PATH) ?? '';
  }

  get enabled(): boolean {
    return this.origins.length > 0 && this.assets !== undefined;
  }

  /** Answers /_embedgate/session, /_embedgate/ws-ticket and the SDK scripts; false for other paths. */
  async serve(path: string, req: IncomingMessage, res: ServerResponse, deny: (denial: Denial, identity?: Identity) => void): Promise<boolean> {
    if (path === SESSION_PATH) {
      await handleSessionRequest(req, res, { ...this.deps, hostOrigins: this.hostOrigins, mode: this.deps.config.embed.mode, deny });
      return true;
    }
    if (path === TICKET_PATH) {
      await handleTicketRequest(req, res, { ...this.deps, deny });
      return true;
    }
    if (this.assets === undefined) return false;
    return this.assets.serve(path, req, res);
  }

  /** An iframe navigation without credentials gets the bootstrap page, which fetches a token from the host. */
  answersWithBootstrap(req: IncomingMessage, denial: Denial): boolean {
    return this.enabled && (denial.error === 'missing_token' || denial.error === 'session_expired')
      && (req.headers['sec-fetch-dest'] === 'iframe' || workerNavigationOf(req) === 'iframe') && (req.method === 'GET' || req.method === 'HEAD');
  }

  /** The bootstrap page; a dead session cookie is cleared on the way so the new session starts clean. */
  sendBootstrap(req: IncomingMessage, res: ServerResponse, denial: Denial, app: AppConfig): void {
    if (denial.error === 'session_expired' && this.deps.config.embed.mode !== 'worker') res.setHeader('set-cookie', clearedSessionCookie());
    sendBootstrap(res, {
      script: this.bootstrapSource,
      frameScriptSrc: this.scriptSrc,
      origins: this.origins,
      frameAncestors: this.frameAncestors,
      headerMode: this.deps.config.embed.header_mode,
      embedMode: this.deps.config.embed.mode,
      scope: app.prefix,
      head: req.method === 'HEAD',
    });
  }

  /**
   * Framing headers for every app response; the frame script in its pages when embedding is on, and the bridge's
   * script for an app with embed.bridge. An app that gets the Authorization header (forward_authorization) has its
   * first requests wait for the token in header mode.
   */
  responseRewrite(identity: Identity | undefined, app: AppConfig, throughWorker: boolean): ResponseRewrite {
    if (!this.enabled) return this.framingOnly;
    const bridge = app.embed?.bridge;
    // The nonce and the script URLs are made only for HTML pages, the one kind of response that gets the script.
    let nonce = '';
    return {
      headers: (headers, isHtml) => {
        if (!isHtml) return rewriteEmbedHeaders(headers, this.framingOptions);
        nonce = randomBytes(16).toString('base64');
        const urls = [this.scriptUrl, ...(throughWorker ? [this.origin + WORKER_PAGE_SCRIPT_PATH] : []), ...(bridge ? [this.origin + BRIDGE_SCRIPT_PATH] : [])];
        rewriteEmbedHeaders(headers, { frameAncestors: this.frameAncestors, script: { nonce, urls, sessionUrl: this.sessionUrl } });
      },
      html: (html) => injectIntoHtml(html, frameScriptTag({
        src: this.scriptSrc,
        origins: this.origins,
        mode: 'app',
        headerMode: this.deps.config.embed.header_mode,
        waitForToken: this.deps.config.embed.header_mode && app.forward_authorization,
        embedMode: this.deps.config.embed.mode,
        nonce,
        ...(identity === undefined ? {} : { expiresAt: identity.expiresAt }),
      }) + (throughWorker ? workerPageScriptTag(this.workerPageSrc, nonce) : '')
        + (bridge ? bridgeScriptTag({
          src: this.bridgeSrc, nonce, origins: this.origins, set: bridge.host_may_set, publish: bridge.publish, events: bridge.events, prefix: app.prefix,
        }) : '')),
    };
  }
}
