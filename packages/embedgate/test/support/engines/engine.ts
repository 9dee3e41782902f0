// One small interface over three browser engines (Chromium, Firefox, WebKit), each driven through its own automation
// protocol with third-party cookies blocked, so one embed scenario can run in all three. Pages are driven only by
// evaluating JavaScript expressions in the top document or in a (cross-origin) iframe of it.
import { createServer, type Server, type Socket } from 'node:net';
import type { TestTls } from './tls.js';

export type EngineName = 'chromium' | 'firefox' | 'webkit';

export interface Engine {
  name: EngineName;
  /** The browser's own name and version, e.g. "Chromium 156.0.8078.129", "Firefox 153.8.0", "WebKitGTK 2.50.6". */
  version: string;
  /** What the adapter set to block third-party cookies and accept the test certificate: prefs, capabilities, flags. */
  settings: Record<string, unknown>;
  /**
   * Requests the browser tried to send anywhere but loopback (the first line of each: "CONNECT host:443 …"). The
   * browser's proxy points at a local guard that refuses them, so nothing reaches the network; an empty list shows
   * the browser never tried.
   */
  outbound: string[];
  /** A fresh tab with its own cookie jar, storage and service workers (nothing shared with other tabs). */
  newTab(): Promise<EngineTab>;
  close(): Promise<void>;
}

export interface EngineTab {
  /** Navigates the top document and waits for its load event. */
  goto(url: string): Promise<void>;
  /**
   * Evaluates a JavaScript expression (not statements; a promise is awaited) in the top document; the result goes
   * through JSON, so return plain data.
   */
  evalTop<T>(js: string): Promise<T>;
  /** The same in the document of the top document's <iframe id=iframeId>, cross-origin or not. */
  evalInFrame<T>(iframeId: string, js: string): Promise<T>;
  /**
   * Polls the expression (in the top document, or in the iframe's) until it is truthy; throws after timeoutMs
   * (default 10 s) with the last value or error. Errors while polling (the frame not there yet, a navigation in
   * progress) count as "not yet".
   */
  waitUntil(js: string, timeoutMs?: number, iframeId?: string): Promise<void>;
  close(): Promise<void>;
}

export interface EngineOptions {
  /** The test CA and certificate the HTTPS servers use: the engine accepts them. */
  tls: TestTls;
}

/** The expression wrapped so that every engine returns the same thing: its awaited value as JSON text. */
export function jsonExpression(js: string): string {
  return `Promise.resolve().then(() => (${js}\n)).then((v) => JSON.stringify({ v }))`;
}

export function parseJsonResult<T>(text: unknown): T {
  if (typeof text !== 'string') throw new Error(`the browser returned ${typeof text} instead of JSON text`);
  return (JSON.parse(text) as { v: T }).v;
}

/** waitUntil over any evaluator: polls every 50 ms until the deadline. */
export async function pollUntil(evaluate: () => Promise<unknown>, js: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      last = await evaluate();
      if (last) return;
    } catch (error) {
      last = error instanceof Error ? `${error.name}: ${error.message.split('\n')[0]}` : error;
    }
    if (Date.now() >= deadline) throw new Error(`waitUntil(${js}) still not true after ${timeoutMs} ms; last: ${String(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A CSS selector for the iframe with this id. */
/** What an EngineTab needs of a page or frame: Playwright's and Puppeteer's alike. */
export interface Evaluating {
  evaluate(expression: string): Promise<unknown>;
}

export interface NavigatingPage extends Evaluating {
  goto(url: string, options: { waitUntil: 'load'; timeout: number }): Promise<unknown>;
}

/** An EngineTab over a page of a CDP or BiDi driver; `frameOf` finds the document of <iframe id=…>. */
export function pageTab(page: NavigatingPage, frameOf: (iframeId: string) => Promise<Evaluating>, close: () => Promise<void>): EngineTab {
  const evalTop = async <T>(js: string): Promise<T> => parseJsonResult<T>(await page.evaluate(jsonExpression(js)));
  const evalInFrame = async <T>(iframeId: string, js: string): Promise<T> =>
    parseJsonResult<T>(await (await frameOf(iframeId)).evaluate(jsonExpression(js)));
  return {
    goto: async (url) => {
      await page.goto(url, { waitUntil: 'load', timeout: 15_000 });
    },
    evalTop,
    evalInFrame,
    waitUntil: (js, timeoutMs = 10_000, iframeId) =>
      pollUntil(() => (iframeId === undefined ? evalTop(js) : evalInFrame(iframeId, js)), js, timeoutMs),
    close,
  };
}

export function iframeSelector(iframeId: string): string {
  return `iframe[id=${JSON.stringify(iframeId)}]`;
}

/** Runs async operations on one tab one at a time (a WebDriver session has a single current frame). */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.tail.then(operation, operation);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export interface OutboundGuard {
  /** host:port of the guard, for a browser's HTTP and HTTPS proxy settings. */
  host: string;
  port: number;
  /** The first line of every request the browser sent to the proxy. */
  attempts: string[];
  close(): Promise<void>;
}

/**
 * A proxy on 127.0.0.1 that forwards nothing: it notes the first line of each request (CONNECT host:port for HTTPS)
 * and answers 403. Browsers send loopback requests directly, so only off-machine requests ever reach it.
 */
export async function startOutboundGuard(): Promise<OutboundGuard> {
  const attempts: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      if (head.includes('\n')) return;
      head += chunk.toString('latin1');
      if (!head.includes('\n') && head.length < 8192) return;
      attempts.push(head.split(/\r?\n/)[0] ?? '');
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the outbound guard has no port');
  return {
    host: '127.0.0.1',
    port: address.port,
    attempts,
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

/** A free TCP port on 127.0.0.1 (for a driver that must be told its port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no free port');
  return address.port;
}
