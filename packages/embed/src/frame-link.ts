// What the frame's two scripts share (bootstrap.js on the bootstrap page, frame.js in the app's pages): their
// configuration, the link to the host page (hello with a MessageChannel port, token requests), the session endpoint
// and the overlay that tells the user what happened. Each page runs one of the scripts, so the state is this
// module's own.
import { PROTOCOL_VERSION, isAttach, type FrameMessage, type HelloMessage, type HostMessage } from './protocol.js';
import { isHostMessage, parseExpiry, parseOrigins, targetOrigins } from './checks.js';

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
  /** how the session travels: the cookie, the service worker's handle, or whichever works (embed.mode) */
  embedMode: 'auto' | 'cookie' | 'worker';
  /** bootstrap mode: the app's prefix, the service worker's scope */
  scope?: string;
}

export const SESSION_PATH = '/_embedgate/session';
/** How long to wait for the host to answer a token request. */
export const TOKEN_TIMEOUT_MS = 20_000;

export const MESSAGES = {
  'not-allowed': 'This app can only be shown inside an approved page.',
  'signed-out': 'You are signed out. Sign in again to use this app.',
  forbidden: 'You do not have access to this app.',
  error: 'Sign-in failed. Reload the page to try again.',
  expired: 'Your session has ended. Reload the page to continue.',
  cookie: 'This browser blocked the sign-in cookie. Allow cookies for this site, then reload.',
} as const;

export type Outcome = 'ok' | 'signed-out' | 'forbidden' | 'error' | 'host-error';
type TokenAnswer = Exclude<HostMessage, { type: 'sign-out' }>;

/** Reads the data-embedgate-* attributes of the script element; undefined when the mode is missing or unknown. */
export function readConfig(script: HTMLOrSVGScriptElement | null = document.currentScript
  ?? document.querySelector<HTMLScriptElement>('script[data-embedgate-mode]')): FrameConfig | undefined {
  const data = script?.dataset;
  const mode = data?.embedgateMode;
  if (!data || (mode !== 'bootstrap' && mode !== 'app')) return undefined;
  const embedMode = data.embedgateEmbedMode;
  return {
    mode,
    origins: parseOrigins(data.embedgateOrigins),
    expires: parseExpiry(data.embedgateExpires),
    headerMode: data.embedgateHeaderMode === 'true',
    waitForToken: data.embedgateWaitForToken === 'true',
    embedMode: embedMode === 'worker' || embedMode === 'auto' ? embedMode : 'cookie',
    ...(data.embedgateScope ? { scope: data.embedgateScope } : {}),
  };
}

/** The page's own fetch, before the app mode wraps it. */
export const nativeFetch = window.fetch;
export let token = '';
export let expires: number | undefined;
export let stopped = false;
/** server clock − local clock, from the Date header of session responses (expires_at is server time) */
export let skew = 0;
/** The handle the last session answer carried (outside cookie mode), for the service worker. */
export let handle = '';
let box: HTMLElement | undefined;
let ports: MessagePort[] = [];
let waiters: Array<(m: TokenAnswer) => void> = [];
let onConnect: () => void;
let onStop: () => void;

export function show(text: string): void {
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
}

export function send(message: FrameMessage): void {
  for (const port of ports) port.postMessage(message);
}

export const waiting = (): boolean => waiters.length > 0;

/** Stops everything for good (the reload of a successful bootstrap, sign-out, a final failure). */
export function halt(): void {
  stopped = true;
  token = '';
  onStop();
}

// POST names the app (its path) so that the gateway checks that app's policy before it makes a session: a cookie,
// or (withHandle) a handle for the service worker to carry.
export const session = (method: string, bearer?: string, withHandle?: boolean): Promise<Response> =>
  nativeFetch.call(window, SESSION_PATH, bearer ? {
    method, credentials: 'include',
    headers: { authorization: 'Bearer ' + bearer, 'content-type': 'application/json' },
    body: JSON.stringify({ path: location.pathname, ...(withHandle && { handle: true }) }),
  } : { method, credentials: 'include' });

/** Asks the host for a token; undefined when it does not answer in time. */
export const requestToken = (): Promise<TokenAnswer | undefined> => new Promise((resolve) => {
  if (!waiters.length) send({ type: 'token-request' });
  const waiter = (answer?: TokenAnswer): void => {
    clearTimeout(timeout);
    waiters = waiters.filter((w) => w !== waiter);
    resolve(answer);
  };
  const timeout = setTimeout(waiter, TOKEN_TIMEOUT_MS);
  waiters.push(waiter);
});

/** A token from the host turned into a session (POST /_embedgate/session). */
export async function exchange(withHandle?: boolean): Promise<Outcome> {
  const answer = await requestToken();
  if (!answer || stopped) return 'error';                 // (after a sign-out the outcome is ignored)
  if (answer.type === 'no-token') return answer.reason === 'signed-out' ? 'signed-out' : 'host-error';
  return startSession(answer.token, withHandle);
}

/** POST /_embedgate/session with this token; keeps the session's end (and its handle) from the answer. */
export async function startSession(bearer: string, withHandle?: boolean): Promise<Outcome> {
  let response: Response;
  try {
    response = await session('POST', bearer, withHandle);
  } catch {
    return 'error';
  }
  if (response.ok) {
    const date = Date.parse(response.headers.get('date') ?? '');
    if (date) skew = date - Date.now();
    const body = await response.json().catch(() => undefined) as { handle?: unknown } | undefined;
    expires = parseExpiry(body) ?? expires;
    if (typeof body?.handle === 'string') handle = body.handle;
    return 'ok';
  }
  return response.status === 401 ? 'signed-out' : response.status === 403 ? 'forbidden' : 'error';
}

/** Shows the outcome and tells the host ('host-error' was already reported by the host SDK itself). */
export function report(outcome: Exclude<Outcome, 'ok'>, final: boolean, text?: string): void {
  if (final) halt();
  show(text ?? MESSAGES[outcome === 'host-error' ? 'error' : outcome]);
  if (outcome === 'error') send({ type: 'error', message: text ?? MESSAGES.error });
  else if (outcome !== 'host-error') send({ type: outcome });
}

async function signOut(): Promise<void> {
  halt();
  try {
    await session('DELETE');
  } catch {
    // the overlay still goes up; the session cookie dies with its expiry
  }
  show(MESSAGES['signed-out']);
  send({ type: 'signed-out' });
}

function onHost(data: unknown): void {
  if (!isHostMessage(data)) return;
  if (data.type === 'sign-out') {
    void signOut();
    return;
  }
  if (data.type === 'token') token = data.token;
  const pending = waiters;
  waiters = [];
  for (const resolve of pending) resolve(data);
}

/** A hello (with a fresh port) to each origin; the browser drops any whose origin the parent does not have. */
function connect(origins: readonly string[]): void {
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
  if (!stopped) onConnect();
}

/**
 * Links this page to its host: false (after showing why) when it is not framed by an allowed origin. `connected`
 * runs after each hello (the host attached, or re-attached after detach); `stopped` when everything stops.
 */
export function openLink(frame: FrameConfig, connected: () => void, stoppedHook: () => void = () => undefined): boolean {
  expires = frame.expires;
  onConnect = connected;
  onStop = stoppedHook;
  if (window.parent === window) {
    if (frame.mode === 'bootstrap') show(MESSAGES['not-allowed']);
    return false;
  }
  const targets = targetOrigins({
    ancestorOrigins: (location as { ancestorOrigins?: DOMStringList }).ancestorOrigins,
    referrer: document.referrer, self: location.origin, allowed: frame.origins,
  });
  if (!targets.length) {
    show(MESSAGES['not-allowed']);
    return false;
  }
  // The host may attach after this page said hello (or re-attach after detach): it asks for a new hello.
  window.addEventListener('message', (event) => {
    if (event.source === window.parent && isAttach(event.data) && targets.includes(event.origin)) connect([event.origin]);
  });
  connect(targets);
  return true;
}
