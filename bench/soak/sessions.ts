// Embed sessions as framed apps keep them: made by POST /_embedgate/session (the gateway's own Origin and a bearer),
// renewed with a fresher token before they end, some ended and replaced (users leaving and coming). Cookie sessions
// and worker-mode handles. A session stays in use while it is renewed (the replaced value still serves requests on
// their way); it is taken out of use and its requests in flight are awaited before it is ended: an ended cookie stops
// working at once, and the soak must not count that race as a failure.
import { nowSeconds, type TokenSource } from './tokens.js';

const SESSION_COOKIE = '__Host-embedgate';
const HANDLE_HEADER = 'x-embedgate-session';
/** Renewed once less than this is left (tokens are renewed at 30 s left, so a fresher one is at hand). */
const RENEW_BELOW_SECONDS = 25;
/** One cookie session is ended and replaced by a new one this often. */
const CHURN_EVERY_MS = 10_000;

export type SessionKind = 'cookie' | 'handle';

export interface SessionCounts {
  created: number;
  renewed: number;
  ended: number;
  failed: number;
  lastError: string | undefined;
}

export class EmbedSession {
  value = '';
  expiresAt = 0;
  inflight = 0;
  /** Taken out of use (being ended). */
  busy = false;
  /** Being renewed (still in use). */
  renewing = false;
  /** Counts the times the session was ended and replaced by a new one (WebSockets of the old one are closed). */
  generation = 0;
  private drained: (() => void) | undefined;

  constructor(readonly kind: SessionKind, readonly tokens: TokenSource) {}

  /** The request headers that carry this session. */
  headers(): Record<string, string> {
    return this.kind === 'cookie' ? { cookie: `${SESSION_COOKIE}=${this.value}` } : { [HANDLE_HEADER]: this.value };
  }

  release(): void {
    this.inflight -= 1;
    if (this.inflight === 0) this.drained?.();
  }

  drain(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.drained = () => {
        this.drained = undefined;
        resolve();
      };
    });
  }
}

export class SessionPool {
  readonly sessions: EmbedSession[] = [];
  readonly counts: SessionCounts = { created: 0, renewed: 0, ended: 0, failed: 0, lastError: undefined };
  private next = { cookie: 0, handle: 0 };
  private timer: NodeJS.Timeout | undefined;
  private churnTimer: NodeJS.Timeout | undefined;
  private maintaining = false;

  constructor(private readonly gatewayUrl: string) {}

  private fail(message: string): void {
    this.counts.failed += 1;
    this.counts.lastError = message;
  }

  /** POST /_embedgate/session: a new session, or a renewal of the one the headers carry. */
  private async post(session: EmbedSession, carried: Record<string, string>): Promise<boolean> {
    const response = await fetch(`${this.gatewayUrl}/_embedgate/session`, {
      method: 'POST',
      headers: { ...carried, authorization: `Bearer ${session.tokens.current().value}`, origin: this.gatewayUrl, 'content-type': 'application/json' },
      body: JSON.stringify(session.kind === 'handle' ? { path: '/sales/', handle: true } : { path: '/sales/' }),
    });
    const body = await response.json().catch(() => ({})) as { expires_at?: number; handle?: string; error?: string };
    const cookie = response.headers.getSetCookie().map((c) => c.split(';')[0] ?? '').find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    const value = session.kind === 'handle' ? body.handle : cookie?.slice(SESSION_COOKIE.length + 1);
    if (response.status !== 200 || value === undefined || body.expires_at === undefined) {
      this.fail(`POST /_embedgate/session (${session.kind}) answered ${response.status} ${body.error ?? ''}`);
      return false;
    }
    session.value = value;
    session.expiresAt = body.expires_at;
    return true;
  }

  async add(kind: SessionKind, tokens: TokenSource): Promise<void> {
    const session = new EmbedSession(kind, tokens);
    if (!(await this.post(session, {}))) throw new Error(this.counts.lastError);
    this.counts.created += 1;
    this.sessions.push(session);
  }

  /** A session of that kind to use for one request (call release() after), or undefined if none is usable. */
  acquire(kind: SessionKind): EmbedSession | undefined {
    const all = this.sessions;
    for (let tried = 0; tried < all.length; tried++) {
      const index = (this.next[kind] + tried) % all.length;
      const session = all[index] as EmbedSession;
      if (session.kind !== kind || session.busy || session.expiresAt <= nowSeconds()) continue;
      this.next[kind] = index + 1;
      session.inflight += 1;
      return session;
    }
    return undefined;
  }

  private async renew(session: EmbedSession): Promise<void> {
    session.renewing = true;
    await session.tokens.refresh();
    try {
      const renewed = await this.post(session, session.headers());
      // A session that could not be renewed is made anew (it would otherwise just end).
      if (renewed) this.counts.renewed += 1;
      else if (await this.post(session, {})) this.counts.created += 1;
    } catch (error) {
      this.fail((error as Error).message);
    } finally {
      session.renewing = false;
    }
  }

  /** Ends one cookie session (DELETE, as a frame that is closed) and makes a new one in its place. */
  private async churn(): Promise<void> {
    const session = this.sessions.find((s) => s.kind === 'cookie' && !s.busy && !s.renewing);
    if (session === undefined) return;
    session.busy = true;
    await session.drain();
    // Before the DELETE: the gateway may close the session's WebSockets before its answer is read here.
    session.generation += 1;
    try {
      const response = await fetch(`${this.gatewayUrl}/_embedgate/session`, { method: 'DELETE', headers: { ...session.headers(), origin: this.gatewayUrl } });
      await response.arrayBuffer();
      if (response.status === 204) this.counts.ended += 1;
      else this.fail(`DELETE /_embedgate/session answered ${response.status}`);
      if (await this.post(session, {})) this.counts.created += 1;
    } catch (error) {
      this.fail((error as Error).message);
    } finally {
      session.busy = false;
    }
  }

  /** Renews sessions close to their end, one at a time, and churns one cookie session every CHURN_EVERY_MS. */
  start(): void {
    this.timer = setInterval(() => {
      if (this.maintaining) return;
      this.maintaining = true;
      void (async () => {
        for (const session of this.sessions) {
          if (!session.busy && session.expiresAt - nowSeconds() < RENEW_BELOW_SECONDS) await this.renew(session);
        }
      })().finally(() => {
        this.maintaining = false;
      });
    }, 1000);
    this.churnTimer = setInterval(() => void this.churn(), CHURN_EVERY_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    clearInterval(this.churnTimer);
  }
}
