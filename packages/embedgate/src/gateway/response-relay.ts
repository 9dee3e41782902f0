// Relays one upstream exchange to the caller as undici delivers it: the head and each piece of the body go straight to
// the caller's ServerResponse (no intermediate stream, no pipe), a page the gateway rewrites is collected first, and
// response_timeout_ms is kept to the millisecond. When the app fails before the caller has a head, the caller gets the
// gateway's answer (502 or 504).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import type { Dispatcher } from 'undici';
import { forwardableResponseHeaders, type HeaderMap } from '../http/headers.js';
import { sendDenial, type Denial } from '../http/respond.js';
import type { ProxyRequest } from './proxy.js';

/** HTML larger than this is not held in memory to be rewritten: the caller gets a 502 instead. */
const MAX_REWRITTEN_HTML_BYTES = 8 * 1024 * 1024;

const DECODERS: Record<string, (input: Buffer) => Buffer> = {
  gzip: (input) => gunzipSync(input),
  'x-gzip': (input) => gunzipSync(input),
  deflate: (input) => inflateSync(input),
  br: (input) => brotliDecompressSync(input),
  identity: (input) => input,
};

const UPSTREAM_TIMEOUT: Denial = { status: 504, error: 'upstream_timeout', message: 'The app did not answer in time.' };
const UPSTREAM_UNAVAILABLE: Denial = { status: 502, error: 'upstream_unavailable', message: 'The app cannot be reached right now.' };
const PAGE_UNREADABLE: Denial = { status: 502, error: 'upstream_page_unreadable', message: 'The app sent a page the gateway cannot read.' };

/** Maps an undici failure before the response started to the answer the caller gets. */
function upstreamFailure(error: Error): Denial {
  const code = (error as { code?: string }).code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' ? UPSTREAM_TIMEOUT : UPSTREAM_UNAVAILABLE;
}

/** A successful GET of an HTML page in an ASCII-compatible charset (UTF-16 pages are left alone). */
function isHtmlPage(method: string, status: number, headers: HeaderMap): boolean {
  const type = String(headers['content-type'] ?? '').toLowerCase();
  return method === 'GET' && status === 200 && type.startsWith('text/html') && !type.includes('utf-16');
}

/** What every relay of one proxy reports: shared, so that a request allocates nothing for it. */
export interface RelayReports {
  /** The app's response head arrived this many seconds after the request left. */
  headReceived(request: ProxyRequest, seconds: number): void;
  /** The app failed before the caller got a head (`reason`: timeout or undici's error code). */
  failed(request: ProxyRequest, reason: string): void;
}

/** A page held back to be rewritten before the caller sees it. */
interface HeldPage {
  status: number;
  headers: HeaderMap;
  decode: ((input: Buffer) => Buffer) | undefined;
  chunks: Buffer[];
  size: number;
}

export class ResponseRelay implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined = undefined;
  /** An abort asked for before undici put the request on a connection. */
  private pendingAbort: Error | undefined = undefined;
  private clientGone = false;
  private headSent = false;
  private settled = false;
  private page: HeldPage | undefined = undefined;
  private clock: NodeJS.Timeout | undefined = undefined;
  private timedOut = false;
  private readonly started = process.hrtime.bigint();

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly request: ProxyRequest,
    private readonly reports: RelayReports,
  ) {
    // A response closes once: `on` spares the wrapper `once` makes.
    res.on('close', this.onClose);
  }

  /**
   * Starts response_timeout_ms once the request (body included) is on its way; it runs for as long as the caller has
   * no head: until the app's head, or the last piece of a page the gateway rewrites. undici's own headers and body
   * timeouts run on a coarse clock that fires up to a second late; they stay for a slow upload and as the streamed
   * body's idle timeout, which undici, unlike this clock, suspends while a slow caller holds the body back.
   */
  startClock(): void {
    if (this.settled || this.clock !== undefined) return;
    this.clock = setTimeout(() => {
      this.timedOut = true;
      this.abort(new Error('response_timeout_ms passed'));
    }, this.request.app.config.response_timeout_ms);
  }

  /** Stops the exchange with the app: now if it is under way, else as soon as undici starts it. */
  abort(reason: Error): void {
    if (this.controller !== undefined) this.controller.abort(reason);
    else this.pendingAbort ??= reason;
  }

  /** The caller went away before the whole answer was sent: the app's request or response is cut off. */
  private readonly onClose = (): void => {
    if (this.res.writableFinished) return;
    this.clientGone = true;
    this.abort(new Error('the caller went away'));
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.pendingAbort !== undefined) controller.abort(this.pendingAbort);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, status: number, upstreamHeaders: Record<string, string | string[] | undefined>): void {
    // 1xx informational heads are between the app and the gateway.
    if (status < 200) return;
    const { request } = this;
    this.reports.headReceived(request, Number(process.hrtime.bigint() - this.started) / 1e9);
    const headers = forwardableResponseHeaders(upstreamHeaders);
    headers['x-request-id'] = request.requestId;
    const html = isHtmlPage(this.req.method as string, status, headers);
    request.rewrite?.headers(headers, html);
    if (html && request.signedIn === true) headers['cache-control'] = 'no-store';
    if (html && request.rewrite?.html !== undefined) {
      const encoding = String(headers['content-encoding'] ?? 'identity').toLowerCase();
      this.page = { status, headers, decode: DECODERS[encoding], chunks: [], size: 0 };
      return;
    }
    this.res.writeHead(status, headers);
    this.headSent = true;
    // The caller's close still matters while the body streams: it stops the app's response.
    this.answer(undefined, true);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const { page } = this;
    if (page !== undefined) {
      // The app sent more of the page: it has response_timeout_ms again for the next piece.
      this.clock?.refresh();
      page.size += chunk.length;
      if (page.size > MAX_REWRITTEN_HTML_BYTES || page.decode === undefined) {
        this.page = undefined;
        this.answer(PAGE_UNREADABLE);
        controller.abort(new Error('the page cannot be rewritten'));
        return;
      }
      page.chunks.push(chunk);
      return;
    }
    if (this.clientGone) return;
    // The caller reads slower than the app sends: undici stops reading from the app until the caller catches up.
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    const { page } = this;
    if (page === undefined) {
      if (this.headSent) this.res.end();
      return;
    }
    this.page = undefined;
    const rewritten = this.rewrite(page);
    if (rewritten === undefined) return this.answer(PAGE_UNREADABLE);
    const { headers } = page;
    delete headers['content-encoding'];
    // The page differs per response (nonce, session expiry): no validator may let a cache revive an old copy.
    delete headers.etag;
    delete headers['last-modified'];
    headers['content-length'] = String(rewritten.length);
    this.res.writeHead(page.status, headers);
    this.res.end(rewritten);
    this.answer(undefined);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    // The app reset, stalled or broke off after the head: the caller's response is cut, never passed off as whole.
    if (this.headSent) {
      this.res.destroy(error);
      return;
    }
    this.page = undefined;
    if (this.settled) return;
    if (this.clientGone) return this.answer(undefined);
    this.reports.failed(this.request, this.timedOut ? 'timeout' : (error as { code?: string }).code ?? 'error');
    this.answer(this.timedOut ? UPSTREAM_TIMEOUT : upstreamFailure(error));
  }

  /**
   * Settles the exchange, once: the caller has its head (or has gone), or gets `denial` as the app failed before
   * that; the response clock stops for good.
   */
  private answer(denial: Denial | undefined, watchClose = false): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.clock);
    if (!watchClose) this.res.off('close', this.onClose);
    if (denial !== undefined) sendDenial(this.req, this.res, denial, this.request.requestId);
  }

  /** The page with the gateway's changes, as bytes; undefined when it cannot be decoded. */
  private rewrite(page: HeldPage): Buffer | undefined {
    const rewriteHtml = this.request.rewrite?.html;
    if (rewriteHtml === undefined || page.decode === undefined) return undefined;
    let html: string;
    try {
      // latin1 maps every byte to one character and back, so inserting ASCII keeps any ASCII-compatible charset
      // (UTF-8, ISO-8859-x, windows-125x) byte for byte.
      html = page.decode(Buffer.concat(page.chunks)).toString('latin1');
    } catch {
      return undefined;
    }
    return Buffer.from(rewriteHtml(html), 'latin1');
  }
}
