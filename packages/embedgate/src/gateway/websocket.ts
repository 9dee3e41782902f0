// Proxies an authorized WebSocket upgrade to the upstream and closes it when the caller's token expires.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { Gauge } from 'prom-client';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { answeredProtocol, appProtocols } from '../embed/worker-credentials.js';
import type { HeaderMap } from '../http/headers.js';
import { rawDenial, type Denial } from '../http/respond.js';
import type { GatewayMetrics } from '../ops/metrics.js';
import type { Sessions } from '../sessions/sessions.js';
import type { MountedApp } from './apps.js';

/** Headers the ws client generates itself for the upstream handshake. */
const HANDSHAKE_HEADERS = ['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol'];
/** Close codes that may not be sent in a close frame (RFC 6455 §7.4.1). */
const RESERVED_CLOSE_CODES = new Set([1004, 1005, 1006, 1015]);
const MAX_TIMER_MS = 2 ** 31 - 1;

export const POLICY_VIOLATION = 1008;
const GOING_AWAY = 1001;
/** A side whose peer has this much unsent data is paused until the peer catches up. */
const HIGH_WATER_BYTES = 1024 * 1024;

function relayableCode(code: number): number {
  if (RESERVED_CLOSE_CODES.has(code) || code < 1000 || code >= 5000) return 1000;
  return code;
}

/** Relays messages from one socket to the other, pausing the source while the target is backed up. */
function pipeMessages(source: WebSocket, target: WebSocket): void {
  source.on('message', (data: RawData, isBinary) => {
    if (target.readyState !== WebSocket.OPEN) return;
    target.send(data, { binary: isBinary }, () => {
      if (source.isPaused && target.bufferedAmount < HIGH_WATER_BYTES) source.resume();
    });
    if (target.bufferedAmount >= HIGH_WATER_BYTES) source.pause();
  });
}

export function refuseUpgrade(socket: Duplex, denial: Denial): void {
  if (socket.writable) socket.end(rawDenial(denial));
  socket.destroy();
}

export interface UpgradeRequest {
  app: MountedApp;
  path: string;
  headers: HeaderMap;
  /** Seconds since the epoch when the credential ends; the socket is closed then. */
  expiresAt: number | undefined;
  /** The embed session that opened the socket: it follows renewals and closes when the session ends. */
  sessionId?: string;
}

export class WebSocketProxy {
  private readonly server = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    handleProtocols: (offered, req) => answeredProtocol(offered, (req as IncomingMessage & { upstreamProtocol?: string }).upstreamProtocol ?? ''),
  });

  /** Proxied WebSockets the gateway holds now (until both sides have closed): sockets whose session ended leave it. */
  private readonly open: Gauge<'app'>;

  constructor(private readonly metrics: GatewayMetrics, private readonly logger: Logger, private readonly sessions: Sessions) {
    this.open = new Gauge({
      name: 'embedgate_websockets_open',
      help: 'Proxied WebSockets open now (either side not yet closed), by app',
      labelNames: ['app'] as const,
      registers: [metrics.registry],
    });
  }

  forward(req: IncomingMessage, socket: Duplex, head: Buffer, upgrade: UpgradeRequest): void {
    const { app } = upgrade;
    const headers: HeaderMap = { ...upgrade.headers };
    for (const name of HANDSHAKE_HEADERS) delete headers[name];
    const target = `${app.origin.replace(/^http/, 'ws')}${upgrade.path}`;
    const upstream = new WebSocket(target, appProtocols(req), {
      headers: headers as Record<string, string>,
      handshakeTimeout: app.config.connect_timeout_ms,
      perMessageDeflate: false,
      followRedirects: false,
    });
    let accepted = false;
    const onEarlyClose = (): void => {
      if (!accepted) upstream.terminate();
    };
    socket.once('close', onEarlyClose);
    socket.on('error', () => undefined);

    upstream.once('unexpected-response', (_request, response) => {
      response.resume();
      socket.off('close', onEarlyClose);
      refuseUpgrade(socket, { status: 502, error: 'upstream_refused_websocket', message: `The app refused the WebSocket (HTTP ${response.statusCode}).` });
      upstream.terminate();
    });
    upstream.once('error', (error) => {
      if (accepted) return;
      socket.off('close', onEarlyClose);
      this.logger.warn({ app: app.config.name, err: (error as { code?: string }).code ?? error.message }, 'upstream WebSocket failed');
      refuseUpgrade(socket, { status: 502, error: 'upstream_unavailable', message: 'The app cannot be reached right now.' });
    });
    upstream.once('open', () => {
      accepted = true;
      socket.off('close', onEarlyClose);
      (req as IncomingMessage & { upstreamProtocol?: string }).upstreamProtocol = upstream.protocol;
      this.server.handleUpgrade(req, socket, head, (client) => this.relay(client, upstream, upgrade));
    });
  }

  private relay(client: WebSocket, upstream: WebSocket, upgrade: UpgradeRequest): void {
    const app = upgrade.app.config.name;
    let ended = false;
    this.open.inc({ app });
    let sidesOpen = 2;
    const sideClosed = (): void => {
      sidesOpen -= 1;
      if (sidesOpen === 0) this.open.dec({ app });
    };
    const countEnd = (reason: string): void => {
      if (ended) return;
      ended = true;
      this.metrics.websockets.inc({ app, end: reason });
    };
    pipeMessages(client, upstream);
    pipeMessages(upstream, client);
    let timer: NodeJS.Timeout | undefined;
    const closeBoth = (reason: string, why: 'expired' | 'revoked'): void => {
      this.logger.info({ app, end: why }, 'closing a WebSocket: its credential ended');
      countEnd(why);
      client.close(POLICY_VIOLATION, reason);
      upstream.close(1000, reason);
    };
    const expireAt = (expiresAt: number | undefined): void => {
      clearTimeout(timer);
      if (expiresAt === undefined) return;
      const delay = Math.max(0, Math.min(expiresAt * 1000 - Date.now(), MAX_TIMER_MS));
      timer = setTimeout(() => closeBoth('credential expired', 'expired'), delay);
      timer.unref();
    };
    expireAt(upgrade.expiresAt);
    let sessionId = upgrade.sessionId;
    /** Session-end news may have been missed: the store says whether the session (or its renewal) is still live. */
    const recheck = (): void => {
      const held = sessionId as string;
      this.sessions.current(held).then((found) => {
        if (ended || held !== sessionId) return;
        if (found === undefined) return closeBoth('session ended', 'revoked');
        sessionId = found.id;
        if (found.id !== held) expireAt(found.record.expiresAt);
      }, () => undefined); // the store is unreachable again: its next reconnection asks again
    };
    const unsubscribe = sessionId === undefined ? () => undefined : this.sessions.onEnd((id, successor) => {
      if (id !== sessionId) return;
      if (successor === undefined) return closeBoth('session ended', 'revoked');
      sessionId = successor.id;
      expireAt(successor.expiresAt);
    }, recheck);
    const cleanUp = (): void => {
      clearTimeout(timer);
      unsubscribe();
    };
    client.on('close', (code, reason) => {
      sideClosed();
      countEnd('client');
      cleanUp();
      if (upstream.readyState === WebSocket.OPEN) upstream.close(relayableCode(code), reason);
      else upstream.terminate();
    });
    upstream.on('close', (code, reason) => {
      sideClosed();
      countEnd('upstream');
      cleanUp();
      if (client.readyState === WebSocket.OPEN) client.close(relayableCode(code), reason);
    });
    client.on('error', () => client.terminate());
    upstream.on('error', () => upstream.terminate());
  }

  /** Ends every proxied socket, for shutdown. */
  close(): void {
    for (const client of this.server.clients) client.close(GOING_AWAY, 'gateway shutting down');
    this.server.close();
  }
}
