// The frame script: served by the gateway at /_embedgate/frame.js and run inside the iframe, on the gateway's origin.
//   bootstrap mode — the tiny page the gateway answers an unauthenticated framed navigation with: say hello to
//                    the (allowlisted) parent, get a token over the MessageChannel, turn it into a session, reload.
//   app mode       — injected into the app's HTML: hello + ready, renew the session before it ends, optionally put
//                    the bearer on same-origin fetch/XHR (header mode), renew once on a 401, obey sign-out.
import { PROTOCOL_VERSION, isAttach, type FrameMessage, type HelloMessage, type HostMessage } from './protocol.js';
import { isHostMessage, isSameOrigin, parseExpiry, parseOrigins, renewDelay, targetOrigins } from './checks.js';

export interface FrameConfig {
  mode: 'bootstrap' | 'app';
  /** exact host origins allowed to receive the hello */
  origins: string[];
  /** epoch seconds when the current session ends (app mode) */
  expires?: number;
  /** put `Authorization: Bearer` on same-origin fetch/XHR */
  headerMode: boolean;
  /** header mode: hold the app's first requests until the token is there (the app reads the bearer itself) */
  waitForToken: boolean;
}

export const SESSION_PATH = '/_embedgate/session';
/** How long to wait for the host to answer a token request. */
export const TOKEN_TIMEOUT_MS = 20_000;
/** Successive scheduled renewals are at least this far apart, whatever the clocks say. */
const MIN_RENEW_GAP_MS = 5000;
/** A 401 does not trigger another renewal this soon after a successful one. */
const RENEW_COOLDOWN_MS = 10_000;

export const MESSAGES = {
  'not-allowed': 'This app can only be shown inside an approved page.',
  'signed-out': 'You are signed out. Sign in again to use this app.',
  forbidden: 'You do not have access to this app.',
  error: 'Sign-in failed. Reload the page to try again.',
  expired: 'Your session has ended. Reload the page to continue.',
  cookie: 'This browser blocked the sign-in cookie. Allow cookies for this site, then reload.',
} as const;

type Outcome = 'ok' | 'signed-out' | 'forbidden' | 'error' | 'host-error';
type TokenAnswer = Exclude<HostMessage, { type: 'sign-out' }>;
const RELOAD_KEY = 'embedgate:reloaded';
/** The wait for the first token before a same-origin request leaves in header mode. */
const FIRST_TOKEN_WAIT_MS = 5000;

/** Reads the data-embedgate-* attributes of the script element; undefined when the mode is missing or unknown. */
export function readConfig(script: HTMLOrSVGScriptElement | null | undefined): FrameConfig | undefined {
  const data = script?.dataset;
  const mode = data?.embedgateMode;
  if (!data || (mode !== 'bootstrap' && mode !== 'app')) return undefined;
  return {
    mode,
    origins: parseOrigins(data.embedgateOrigins),
    expires: parseExpiry(data.embedgateExpires),
    headerMode: data.embedgateHeaderMode === 'true',
    waitForToken: data.embedgateWaitForToken === 'true',
  };
}

export function start(script: HTMLOrSVGScriptElement | null = document.currentScript
  ?? document.querySelector<HTMLScriptElement>('script[data-embedgate-mode]')): void {
  const config = readConfig(script);
  if (!config) return;
  const app = config.mode === 'app';
  const { headerMode } = config;
  const nativeFetch = window.fetch;
  let box: HTMLElement | undefined;
  let ports: MessagePort[] = [];
  let waiters: Array<(m: TokenAnswer) => void> = [];
  let token = '';
  let expires = config.expires;
  let stopped = false;
  let busy = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let renewal: Promise<boolean> | undefined;
  let generation = 0;
  let lastRenewal = 0;
  /** server clock − local clock, from the Date header of session responses (expires_at is server time) */
  let skew = 0;
  const serverNow = (): number => Date.now() + skew;
  let firstToken: Promise<unknown> | undefined;

  const show = (text: string): void => {
    if (!box) {
      box = document.createElement('div');
      box.setAttribute('role', 'alert');
      Object.assign(box.style, {
        position: 'fixed', inset: '0', zIndex: '2147483647', display: 'grid', placeItems: 'center', padding: '1em',
        background: 'rgba(255,255,255,.96)', color: '#222', font: '16px system-ui,sans-serif', textAlign: 'center',
      });
      (document.body ?? document.documentElement).append(box);
    }
    box.textContent = text;
  };
  const send = (message: FrameMessage): void => {
    for (const port of ports) port.postMessage(message);
  };
  // POST names the app (its path) so that the gateway checks that app's policy before it sets a cookie.
  const session = (method: string, bearer?: string): Promise<Response> =>
    nativeFetch.call(window, SESSION_PATH, bearer ? {
      method, credentials: 'include',
      headers: { authorization: 'Bearer ' + bearer, 'content-type': 'application/json' },
      body: JSON.stringify({ path: location.pathname }),
    } : { method, credentials: 'include' });

  if (window.parent === window) {
    if (!app) show(MESSAGES['not-allowed']);
    return;
  }
  const targets = targetOrigins({
    ancestorOrigins: (location as { ancestorOrigins?: DOMStringList }).ancestorOrigins,
    referrer: document.referrer, self: location.origin, allowed: config.origins,
  });
  if (!targets.length) {
    show(MESSAGES['not-allowed']);
    return;
  }

  const onHost = (data: unknown): void => {
    if (!isHostMessage(data)) return;
    if (data.type === 'sign-out') {
      void signOut();
      return;
    }
    if (data.type === 'token') token = data.token;
    const pending = waiters;
    waiters = [];
    for (const resolve of pending) resolve(data);
  };

  // A hello (with a fresh port) to each target origin; the browser drops any whose origin the parent does not have.
  const connect = (origins: readonly string[]): void => {
    for (const port of ports) port.close();
    ports = origins.map((origin) => {
      const { port1, port2 } = new MessageChannel();
      port1.onmessage = (event) => {
        if (ports.length > 1) {
          for (const port of ports) if (port !== port1) port.close();
          ports = [port1];
        }
        onHost(event.data);
      };
      window.parent.postMessage({ embedgate: PROTOCOL_VERSION, type: 'hello' } satisfies HelloMessage, origin, [port2]);
      return port1;
    });
    if (stopped) return;
    if (app) send({ type: 'ready' });
    if (waiters.length) send({ type: 'token-request' });
    else if (!app) void bootstrap();
  };

  // Asks the host for a token; undefined when it does not answer in time.
  const requestToken = (): Promise<TokenAnswer | undefined> => new Promise((resolve) => {
    if (!waiters.length) send({ type: 'token-request' });
    const waiter = (answer?: TokenAnswer): void => {
      clearTimeout(timeout);
      waiters = waiters.filter((w) => w !== waiter);
      resolve(answer);
    };
    const timeout = setTimeout(waiter, TOKEN_TIMEOUT_MS);
    waiters.push(waiter);
  });

  // token from the host → POST /_embedgate/session
  const exchange = async (): Promise<Outcome> => {
    const answer = await requestToken();
    if (!answer || stopped) return 'error';                 // (after a sign-out the outcome is ignored)
    if (answer.type === 'no-token') return answer.reason === 'signed-out' ? 'signed-out' : 'host-error';
    let response: Response;
    try {
      response = await session('POST', answer.token);
    } catch {
      return 'error';
    }
    if (response.ok) {
      const date = Date.parse(response.headers.get('date') ?? '');
      if (date) skew = date - Date.now();
      expires = parseExpiry(await response.json().catch(() => undefined)) ?? expires;
      return 'ok';
    }
    return response.status === 401 ? 'signed-out' : response.status === 403 ? 'forbidden' : 'error';
  };

  // Shows the outcome and tells the host ('host-error' was already reported by the host SDK itself).
  const report = (outcome: Exclude<Outcome, 'ok'>, final: boolean, text?: string): void => {
    if (final) {
      stopped = true;
      token = '';
      clearTimeout(timer);
    }
    show(text ?? MESSAGES[outcome === 'host-error' ? 'error' : outcome]);
    if (outcome === 'error') send({ type: 'error', message: text ?? MESSAGES.error });
    else if (outcome !== 'host-error') send({ type: outcome });
  };

  async function bootstrap(): Promise<void> {
    if (busy || stopped) return;
    busy = true;
    const outcome = await exchange();
    busy = false;
    if (stopped) return;
    if (outcome !== 'ok') return report(outcome, false);
    // A bootstrap page again right after the reload means the cookie did not stick: say so instead of looping.
    let last = 0;
    try {
      last = Number(sessionStorage.getItem(RELOAD_KEY));
      sessionStorage.setItem(RELOAD_KEY, String(Date.now()));
    } catch {
      // no storage: no loop detection
    }
    if (Date.now() - last < 30_000) return report('error', false, MESSAGES.cookie);
    stopped = true;
    location.reload();
  }

  async function signOut(): Promise<void> {
    stopped = true;
    token = '';
    clearTimeout(timer);
    try {
      await session('DELETE');
    } catch {
      // the overlay still goes up; the session cookie dies with its expiry
    }
    show(MESSAGES['signed-out']);
    send({ type: 'signed-out' });
  }

  const schedule = (delay: number | undefined): void => {
    clearTimeout(timer);
    if (delay !== undefined && !stopped) timer = setTimeout(() => void renew(), delay);
  };

  // App mode: get a fresh token and rotate the session. Concurrent callers share one attempt.
  function renew(): Promise<boolean> {
    if (stopped) return Promise.resolve(false);
    return renewal ??= exchange().then((outcome) => {
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

  // The host may attach after this page said hello (or re-attach after detach): it asks for a new hello.
  window.addEventListener('message', (event) => {
    if (event.source === window.parent && isAttach(event.data) && targets.includes(event.origin)) {
      connect([event.origin]);
    }
  });

  if (app) {
    try {
      sessionStorage.removeItem(RELOAD_KEY);
    } catch {
      // no storage
    }
    wrapFetch();
    wrapXhr();
    connect(targets);
    if (headerMode) {
      const first = requestToken();
      // Requests go with the session cookie until the token is there, unless the app reads the bearer itself.
      if (config.waitForToken) firstToken = Promise.race([first, new Promise((resolve) => setTimeout(resolve, FIRST_TOKEN_WAIT_MS))]);
    }
    schedule(renewDelay(expires, Date.now()));
  } else connect(targets);
}
