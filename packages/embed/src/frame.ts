// The frame script of the app's pages (served at /_embedgate/frame.js, injected into the app's HTML by the gateway):
// hello + ready to the host, renew the session before it ends, optionally put the bearer on same-origin fetch/XHR
// (header mode), renew once on a 401, obey sign-out. In worker mode the service worker carries the session (and
// learns each renewed handle from the session answers it passes on); the gateway adds worker-page.js to such pages.
import { isSameOrigin, renewDelay } from './checks.js';
import {
  exchange, expires, MESSAGES, nativeFetch, openLink, readConfig, report, requestToken, send, skew, stopped, token, waiting,
  type FrameConfig,
} from './frame-link.js';

/** Successive scheduled renewals are at least this far apart, whatever the clocks say. */
const MIN_RENEW_GAP_MS = 5000;
/** A 401 does not trigger another renewal this soon after a successful one. */
const RENEW_COOLDOWN_MS = 10_000;
const RELOAD_KEY = 'embedgate:reloaded';
/** The wait for the first token before a same-origin request leaves in header mode. */
const FIRST_TOKEN_WAIT_MS = 5000;

export function start(config: FrameConfig | undefined = readConfig()): void {
  if (config?.mode !== 'app') return;
  const { headerMode } = config;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let renewal: Promise<boolean> | undefined;
  let generation = 0;
  let lastRenewal = 0;
  let firstToken: Promise<unknown> | undefined;

  const linked = openLink(config, () => {
    send({ type: 'ready' });
    if (waiting()) send({ type: 'token-request' });
  }, () => clearTimeout(timer));
  if (!linked) return;
  const serverNow = (): number => Date.now() + skew;

  const schedule = (delay: number | undefined): void => {
    clearTimeout(timer);
    if (delay !== undefined && !stopped) timer = setTimeout(() => void renew(), delay);
  };

  // Get a fresh token and rotate the session. Concurrent callers share one attempt.
  function renew(): Promise<boolean> {
    if (stopped) return Promise.resolve(false);
    // Under the service worker the session is the worker's: renewals ask for a new handle, which the worker keeps.
    return renewal ??= exchange(navigator.serviceWorker?.controller != null).then((outcome) => {
      renewal = undefined;
      if (stopped) return false;
      if (outcome === 'ok') {
        generation++;
        lastRenewal = Date.now();
        const delay = renewDelay(expires, serverNow());
        schedule(delay === undefined ? undefined : Math.max(MIN_RENEW_GAP_MS, delay));
        return true;
      }
      const left = expires === undefined ? undefined : expires * 1000 - serverNow();
      if (outcome === 'signed-out' || outcome === 'forbidden') report(outcome, true);
      else if (left !== undefined && left <= 0) report('error', true, MESSAGES.expired);
      else {
        // Transient: try again while the session lasts (after 70% of what is left, at least a second apart).
        if (outcome === 'error') send({ type: 'error', message: MESSAGES.error });
        if (left !== undefined) schedule(Math.max(1000, Math.round(0.7 * left)));
      }
      return false;
    });
  }

  // After a 401: renew, unless a renewal finished since the request left (then just retry) or one finished so
  // recently that the 401 cannot be about the session.
  const renewAfter401 = (sentAt: number): Promise<boolean> | boolean =>
    sentAt !== generation || (renewal ?? (Date.now() - lastRenewal > RENEW_COOLDOWN_MS && renew()));

  const sameOrigin = (url: string | URL): boolean => isSameOrigin(url, document.baseURI, location.origin);

  function wrapFetch(): void {
    window.fetch = async function fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
      const url = input instanceof Request ? input.url : String(input);
      if (stopped || !sameOrigin(url)) return nativeFetch.call(window, input, init);
      const request = new Request(input instanceof Request ? input : new URL(url, document.baseURI), init);
      if (request.headers.has('authorization')) return nativeFetch.call(window, request);
      if (firstToken && !token) await firstToken;
      const retry = request.clone();
      const sentAt = generation;
      const withBearer = (r: Request): Request => {
        if (headerMode && token) r.headers.set('authorization', 'Bearer ' + token);
        return r;
      };
      const response = await nativeFetch.call(window, withBearer(request));
      if (response.status !== 401 || stopped || !(await renewAfter401(sentAt))) return response;
      return nativeFetch.call(window, withBearer(retry));
    };
  }

  function wrapXhr(): void {
    const proto = XMLHttpRequest.prototype;
    const { open, send: xhrSend, setRequestHeader } = proto;
    const state = new WeakMap<XMLHttpRequest, { same: boolean; own: boolean }>();
    proto.open = function (this: XMLHttpRequest, ...args: unknown[]): void {
      state.set(this, { same: sameOrigin(args[1] as string | URL), own: false });
      (open as (...a: unknown[]) => void).apply(this, args);
    };
    proto.setRequestHeader = function (this: XMLHttpRequest, name: string, value: string): void {
      const s = state.get(this);
      if (s && name.toLowerCase() === 'authorization') s.own = true;
      setRequestHeader.call(this, name, value);
    };
    proto.send = function (this: XMLHttpRequest, body?: Document | XMLHttpRequestBodyInit | null): void {
      const s = state.get(this);
      if (s?.same && !s.own && !stopped) {
        if (headerMode && token) setRequestHeader.call(this, 'Authorization', 'Bearer ' + token);
        const sentAt = generation;
        this.addEventListener('loadend', () => {
          if (this.status === 401 && !stopped) void renewAfter401(sentAt);
        });
      }
      xhrSend.call(this, body);
    };
  }

  // The bootstrap's reload marker (in this history entry, before the app runs) has done its job.
  try {
    const state = history.state as Record<string, unknown> | null;
    if (state !== null && typeof state === 'object' && RELOAD_KEY in state) history.replaceState(null, '');
  } catch {
    // no history state
  }
  wrapFetch();
  wrapXhr();
  if (headerMode) {
    const first = requestToken();
    // Requests go with the session cookie until the token is there, unless the app reads the bearer itself.
    if (config.waitForToken) firstToken = Promise.race([first, new Promise((resolve) => setTimeout(resolve, FIRST_TOKEN_WAIT_MS))]);
  }
  schedule(renewDelay(expires, Date.now()));
}
