// Host SDK: attach(iframe, { gateway, getToken }) answers the framed app's token requests over a MessageChannel, and
// talks to the app over the bridge's own channel when the gateway's config gives the app one.
import { PROTOCOL_VERSION, helloType, type AttachMessage, type HostMessage } from './protocol.js';
import { isFrameMessage } from './checks.js';
import type { BridgeErrorCode, JsonValue } from './bridge-protocol.js';
import { loadHostBridge } from './bridge-loader.js';
import type { BridgeRequest, HostBridge } from './host-bridge.js';

export type EmbedEventType = 'ready' | 'signed-out' | 'forbidden' | 'error' | 'props' | 'event' | 'navigate' | 'resize';
export const EMBED_EVENTS: readonly EmbedEventType[] = ['ready', 'signed-out', 'forbidden', 'error', 'props', 'event', 'navigate', 'resize'];

export interface EmbedEventDetail {
  type: EmbedEventType;
  /** a human-readable reason, when there is one */
  message?: string;
  /** what getToken() threw (an 'error' raised on the host side) */
  error?: unknown;
  /** 'error' from the bridge: why a message was refused or dropped */
  code?: BridgeErrorCode;
  /** 'props': the component, its prop and the new value */
  id?: string;
  prop?: string;
  value?: JsonValue;
  /** 'event': the name and data the app emitted */
  name?: string;
  data?: JsonValue;
  /** 'navigate': the app's new path (with query and hash) */
  path?: string;
  /** 'resize': the height of the app's content, in CSS pixels */
  height?: number;
}
export type EmbedListener = (detail: EmbedEventDetail) => void;

/**
 * Returns an access token for the gateway's audience, fresh enough to use now (call your OIDC client's silent
 * token method). null, undefined or '' means "signed out".
 */
export type GetToken = () => Promise<string | null | undefined> | string | null | undefined;

/**
 * A page that says hello on a new port within this time of the last getToken() result (the app page the bootstrap
 * reloaded into, a page the app navigated to) gets that token once more instead of a second getToken() call: the
 * gateway has just accepted it, and the app's first request waits for it in header mode. Renewals always call
 * getToken().
 */
export const REUSE_FOR_NEXT_PAGE_MS = 5000;
const SESSION_PATH = '/_embedgate/session';
/** The host page's latest session POST to each gateway origin. */
const sessionPosts = new Map<string, Promise<unknown>>();

export interface AttachOptions {
  /** the gateway's URL; only its origin is used, compared exactly with the hello's origin */
  gateway: string;
  getToken: GetToken;
  /**
   * The app's URL on the gateway, for an iframe that has not navigated yet: attach() makes the session from this
   * page first (a CORS POST with the token), then points the iframe there, so its first page load is the app itself.
   * Without it (or when that fails), the framed app's bootstrap page makes the session.
   */
  src?: string;
  /** Props to set once the app's bridge is ready, e.g. { region: { value: 'East' } } (embed.bridge.host_may_set). */
  initialProps?: Record<string, Record<string, JsonValue>>;
  /** Size the iframe's height to the app's content (needs embed.bridge on the app). */
  autoResize?: boolean;
}

export interface EmbedHandle {
  readonly iframe: HTMLIFrameElement;
  /** Adds a listener; returns a function that removes it. */
  on(type: EmbedEventType, listener: EmbedListener): () => void;
  off(type: EmbedEventType, listener: EmbedListener): void;
  /** Ends the framed app's session (DELETE /_embedgate/session) and shows its signed-out overlay. */
  signOut(): void;
  /**
   * Sets props of a component of the app as if the user had changed them; the app's callbacks run. Resolves when the
   * app applied them; rejects with an EmbedBridgeError (`code`: prop_not_allowed, unknown_component, timeout…).
   */
  setProps(id: string, props: Record<string, JsonValue>): Promise<void>;
  /** Moves the app to another path within its prefix; rejects with an EmbedBridgeError (path_not_allowed…). */
  navigate(path: string): Promise<void>;
  /**
   * Sends a named event to the app's window.embedgate.on(name) handlers (embed.bridge.events); rejects with an
   * EmbedBridgeError (no_listener, not_supported…).
   */
  send(name: string, data?: JsonValue): Promise<void>;
  /** Stops listening and closes the port. */
  detach(): void;
}

/** The exact origin of an http(s) gateway URL; throws on anything else. */
export function gatewayOrigin(gateway: string): string {
  const url = new URL(gateway);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError('embedgate: gateway must be an http(s) URL');
  return url.origin;
}

export function attach(iframe: HTMLIFrameElement, options: AttachOptions): EmbedHandle {
  const origin = gatewayOrigin(options.gateway);
  const { getToken } = options;
  if (typeof getToken !== 'function') throw new TypeError('embedgate: getToken must be a function');
  const listeners = new Map<EmbedEventType, Set<EmbedListener>>();
  let port: MessagePort | undefined;
  let pendingSignOut = false;
  let kept: { token: string; at: number } | undefined;

  const emit = (detail: EmbedEventDetail): void => {
    for (const listener of listeners.get(detail.type) ?? []) {
      try {
        listener(detail);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
    iframe.dispatchEvent(new CustomEvent('embedgate:' + detail.type, { detail }));
  };

  const answer = async (to: MessagePort, firstOnPort: boolean): Promise<void> => {
    if (firstOnPort && kept && Date.now() - kept.at < REUSE_FOR_NEXT_PAGE_MS) {
      to.postMessage({ type: 'token', token: kept.token } satisfies HostMessage);
      kept = undefined;
      return;
    }
    kept = undefined;
    let reply: HostMessage;
    try {
      const token = await getToken();
      reply = typeof token === 'string' && token ? { type: 'token', token } : { type: 'no-token', reason: 'signed-out' };
    } catch (error) {
      reply = { type: 'no-token', reason: 'error' };
      emit({ type: 'error', message: 'getToken failed', error });
    }
    if (reply.type === 'token' && !pendingSignOut) kept = { token: reply.token, at: Date.now() };
    to.postMessage(reply);
  };

  // The bridge's host half is loaded when the app's bridge says hello (or a request is made): most apps have none.
  let bridge: Promise<HostBridge> | undefined;
  const withBridge = (): Promise<HostBridge> => bridge ??= loadHostBridge(origin).then(
    ({ hostBridge }) => hostBridge({ iframe, emit, initialProps: options.initialProps, autoResize: options.autoResize }),
    () => {
      // Tried again on the next request or hello.
      bridge = undefined;
      throw Object.assign(new Error('the bridge could not be loaded from the gateway'), { name: 'EmbedBridgeError', code: 'not_connected' });
    },
  );
  const request = (body: BridgeRequest): Promise<void> => withBridge().then((b) => b.request(body));

  const onMessage = (event: MessageEvent): void => {
    const frame = iframe.contentWindow;
    const hello = event.ports[0];
    const type = helloType(event.data);
    if (!frame || event.source !== frame || !type) return;
    if (type === 'bridge-hello') {
      if (event.origin === origin && hello) {
        withBridge().then((b) => b.connect(hello), (error: Error) => emit({ type: 'error', code: 'not_connected', message: error.message }));
      }
      return;
    }
    if (event.origin !== origin) {
      // Ignored; most likely `gateway` does not match the iframe's URL (scheme, host and port must all match).
      console.warn(`embedgate: ignored a hello from ${event.origin}; the gateway option says ${origin}`);
      return;
    }
    if (!hello) return;
    port?.close();
    port = hello;
    let asked = false;
    hello.onmessage = ({ data }: MessageEvent) => {
      if (!isFrameMessage(data)) return;
      if (data.type === 'token-request') {
        void answer(hello, !asked);
        asked = true;
        return;
      }
      if (data.type !== 'ready') kept = undefined;
      emit(data.type === 'ready' || data.type === 'signed-out' ? { type: data.type } : { ...data });
    };
    if (pendingSignOut) {
      pendingSignOut = false;
      hello.postMessage({ type: 'sign-out' } satisfies HostMessage);
    }
  };

  // The session before the first navigation: its partitioned cookie lands in this page's partition, where the frame
  // will look for it. Whatever happens, the iframe then navigates (a failure leaves it to the bootstrap page).
  const open = async (src: URL): Promise<void> => {
    try {
      const token = await getToken();
      if (typeof token === 'string' && token) {
        kept = { token, at: Date.now() };
        // One after the other per gateway: frames attached together share one session (a later POST brings the
        // earlier one's cookie, and the gateway keeps that session when the token is no fresher).
        const post = (sessionPosts.get(origin) ?? Promise.resolve()).then(() => fetch(origin + SESSION_PATH, {
          method: 'POST', mode: 'cors', credentials: 'include',
          headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' },
          body: JSON.stringify({ path: src.pathname }),
        })).catch(() => undefined);
        sessionPosts.set(origin, post);
        await post;
      }
    } catch {
      // the bootstrap page asks again
    }
    iframe.src = src.href;
  };
  if (options.src !== undefined) {
    const src = new URL(options.src, location.href);
    if (src.origin !== origin) throw new TypeError('embedgate: src must be a URL of the gateway');
    void open(src);
  }

  window.addEventListener('message', onMessage);
  // A frame that already said hello before we listened says it again. Only worth asking when the iframe shows a
  // cross-origin page (reading its location throws); an about:blank or same-origin iframe is not the gateway
  // yet, and the browser would log a targetOrigin mismatch. The browser delivers it only to the gateway's origin.
  try {
    void iframe.contentWindow?.location.href;
  } catch {
    iframe.contentWindow?.postMessage({ embedgate: PROTOCOL_VERSION, type: 'attach' } satisfies AttachMessage, origin);
  }

  return {
    iframe,
    on(type, listener) {
      let set = listeners.get(type);
      if (!set) listeners.set(type, set = new Set());
      set.add(listener);
      return () => this.off(type, listener);
    },
    off(type, listener) {
      listeners.get(type)?.delete(listener);
    },
    signOut() {
      kept = undefined;
      if (port) port.postMessage({ type: 'sign-out' } satisfies HostMessage);
      else pendingSignOut = true;
    },
    setProps(id, props) {
      return request({ type: 'set-props', id, props });
    },
    navigate(path) {
      return request({ type: 'navigate', path });
    },
    send(name, data = null) {
      return request({ type: 'event', name, data });
    },
    detach() {
      void bridge?.then((b) => b.close());
      window.removeEventListener('message', onMessage);
      port?.close();
      port = undefined;
      kept = undefined;
      listeners.clear();
    },
  };
}
