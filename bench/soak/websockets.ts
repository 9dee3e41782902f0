// A steady pool of WebSockets through the gateway to the upstream's echo: each opens (half with a bearer token, half
// with an embed session cookie), checks a few echoes, closes after a few seconds, and the next one opens.
import WebSocket from 'ws';
import type { EmbedSession, SessionPool } from './sessions.js';
import type { TokenSource } from './tokens.js';

const MESSAGE_EVERY_MS = 1000;
const ECHO_TIMEOUT_MS = 3000;
const MIN_LIFE_MS = 2000;
const MAX_LIFE_MS = 8000;

export interface WsCounts {
  opened: number;
  /** Closed by the soak after its echoes came back. */
  closed: number;
  echoes: number;
  /** Closed by the gateway because the cookie's session was ended meanwhile (expected: the session churn). */
  endedWithSession: number;
  failed: number;
}

export interface WsWindow extends WsCounts {
  /** The first failures of the window. */
  failures: string[];
}

const emptyWindow = (): WsWindow => ({ opened: 0, closed: 0, echoes: 0, endedWithSession: 0, failed: 0, failures: [] });

export class WebSocketPool {
  private window = emptyWindow();
  readonly total: WsCounts = { opened: 0, closed: 0, echoes: 0, endedWithSession: 0, failed: 0 };
  private stopped = false;
  private readonly running: Array<Promise<void>> = [];
  /** Closes each open socket (for stop()). */
  private readonly closers = new Set<() => void>();
  private turn = 0;

  constructor(private readonly gatewayUrl: string, private readonly analysts: TokenSource[], private readonly sessions: SessionPool) {}

  private count(what: keyof WsCounts, failure?: string): void {
    this.window[what] += 1;
    this.total[what] += 1;
    if (failure !== undefined && this.window.failures.length < 5) this.window.failures.push(failure);
  }

  /** One socket's life; resolves when it has closed. */
  private life(slot: number): Promise<void> {
    this.turn += 1;
    const tokens = this.analysts[this.turn % this.analysts.length] as TokenSource;
    const session: EmbedSession | undefined = slot % 2 === 1 ? this.sessions.acquire('cookie') : undefined;
    const generation = session?.generation;
    const credential = session === undefined ? { authorization: `Bearer ${tokens.current().value}` } : session.headers();
    const url = `${this.gatewayUrl.replace(/^http/, 'ws')}/sales/ws?slot=${slot}`;
    return new Promise((resolve) => {
      const ws = new WebSocket(url, { headers: { ...credential, origin: this.gatewayUrl }, perMessageDeflate: false, handshakeTimeout: 10_000 });
      let held = session !== undefined;
      const release = (): void => {
        if (held) session?.release();
        held = false;
      };
      let closing = false;
      let failed = false;
      let pending: { text: string; timer: NodeJS.Timeout } | undefined;
      let sender: NodeJS.Timeout | undefined;
      let lifeTimer: NodeJS.Timeout | undefined;
      const closeNow = (): void => {
        closing = true;
        if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'done');
        else ws.terminate();
      };
      this.closers.add(closeNow);
      const fail = (why: string): void => {
        if (failed) return;
        failed = true;
        this.count('failed', `${session === undefined ? 'bearer' : 'cookie'} socket: ${why}`);
        ws.terminate();
      };
      ws.once('unexpected-response', (_req, res) => {
        fail(`handshake answered ${res.statusCode}`);
        res.resume();
      });
      ws.once('open', () => {
        release();
        this.count('opened');
        let n = 0;
        const send = (): void => {
          const text = `echo ${slot} ${(n += 1)}`;
          pending = { text, timer: setTimeout(() => fail(`no echo within ${ECHO_TIMEOUT_MS} ms`), ECHO_TIMEOUT_MS) };
          ws.send(text);
        };
        send();
        sender = setInterval(() => {
          if (pending === undefined) send();
        }, MESSAGE_EVERY_MS);
        lifeTimer = setTimeout(closeNow, MIN_LIFE_MS + Math.random() * (MAX_LIFE_MS - MIN_LIFE_MS));
      });
      ws.on('message', (data) => {
        const text = String(data);
        if (pending === undefined || text !== pending.text) return fail(`unexpected message "${text.slice(0, 40)}"`);
        clearTimeout(pending.timer);
        pending = undefined;
        this.count('echoes');
      });
      ws.on('error', (error) => fail((error as { code?: string }).code ?? error.message));
      ws.once('close', (code, reason) => {
        release();
        this.closers.delete(closeNow);
        clearInterval(sender);
        clearTimeout(lifeTimer);
        if (pending !== undefined) clearTimeout(pending.timer);
        if (!failed) {
          if (closing) this.count('closed');
          else if (code === 1008 && session !== undefined && session.generation !== generation) this.count('endedWithSession');
          else if (!this.stopped) this.count('failed', `closed by the gateway: ${code} ${String(reason)}`);
        }
        resolve();
      });
    });
  }

  /** Keeps `size` sockets going until stop(). */
  start(size: number): void {
    for (let slot = 0; slot < size; slot++) {
      this.running.push((async () => {
        // Spread the first opens over a second.
        await new Promise((resolve) => setTimeout(resolve, (slot * 1000) / size));
        while (!this.stopped) {
          await this.life(slot);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })());
    }
  }

  /** The counts since the last call. */
  take(): WsWindow {
    const window = this.window;
    this.window = emptyWindow();
    return window;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const close of this.closers) close();
    await Promise.all(this.running);
  }
}
