// The app half of the host ↔ app bridge (dist/bridge.min.js, served as /_embedgate/bridge.js): the gateway adds it to
// the pages of apps whose config has embed.bridge, with what that config allows. It opens its own MessageChannel to
// the exact host origin (found and checked like the frame script's hello), applies the host's setProps/navigate
// requests that the config allows, passes the host's named events to the app's window.embedgate.on handlers, and
// tells the host what the app publishes, emits (window.embedgate.emit), where it navigated and how tall its content is. Every message is size-checked, validated and rate limited.
import { parseOrigins, targetOrigins } from './checks.js';
import {
  isBridgeHostMessage, isEventName, isJsonValue, jsonSize, MAX_BRIDGE_MESSAGE_BYTES, parseCapabilities, parsePropRef, pathWithin,
  rateLimit, type BridgeErrorCode, type BridgeFrameMessage, type BridgeHostMessage,
} from './bridge-protocol.js';
import { DashBridge } from './dash-bridge.js';
import { isAttach, PROTOCOL_VERSION } from './protocol.js';

/** At most one error report per this many milliseconds for messages dropped by the rate limit. */
const LIMIT_REPORT_MS = 1000;

export function startBridge(script: HTMLOrSVGScriptElement | null = document.currentScript): void {
  const capabilities = parseCapabilities(script?.dataset.embedgateBridge);
  const origins = parseOrigins(script?.dataset.embedgateOrigins);
  if (!capabilities || window.parent === window) return;
  const ports: MessagePort[] = [];
  const incoming = rateLimit();
  const outgoing = rateLimit();
  let limitReportedAt = 0;
  const dash = capabilities.set.length > 0 || capabilities.publish.length > 0 ? new DashBridge() : undefined;

  const post = (message: BridgeFrameMessage): void => {
    for (const port of ports) port.postMessage(message);
  };
  const error = (code: BridgeErrorCode, message: string): void => post({ type: 'bridge-error', code, message });
  /** Sends what the app produced, unless it is not JSON, too large, or more than the rate allows. */
  const send = (message: BridgeFrameMessage, what: string): void => {
    if (!outgoing()) {
      if (Date.now() - limitReportedAt >= LIMIT_REPORT_MS) {
        limitReportedAt = Date.now();
        error('rate_limited', 'bridge messages over the rate limit were dropped');
      }
      return;
    }
    if (jsonSize(message) > MAX_BRIDGE_MESSAGE_BYTES) error('value_too_large', `${what}: over 64 KB, not sent`);
    else post(message);
  };

  const answer = (seq: number, code?: BridgeErrorCode, message = ''): void =>
    post(code === undefined ? { type: 'result', seq, ok: true } : { type: 'result', seq, ok: false, code, message });

  /** The app's handlers for the host's named events (window.embedgate.on). */
  const handlers = new Map<string, Set<(data: unknown) => void>>();

  const apply = async (request: BridgeHostMessage): Promise<void> => {
    if (request.type === 'event') {
      const listeners = capabilities.events ? handlers.get(request.name) : undefined;
      if (!listeners?.size) return answer(request.seq, capabilities.events ? 'no_listener' : 'not_supported', `no handler for ${request.name}`);
      for (const listener of listeners) {
        try {
          listener(request.data);
        } catch (failure) {
          queueMicrotask(() => {
            throw failure;
          });
        }
      }
      return answer(request.seq);
    }
    if (request.type === 'navigate') {
      const path = pathWithin(request.path, capabilities.prefix, location.origin);
      if (path === undefined) return answer(request.seq, 'path_not_allowed', `only paths under ${capabilities.prefix} of this app`);
      if (dash?.isDash) DashBridge.navigate(path);
      else location.assign(path);
      return answer(request.seq);
    }
    const refused = Object.keys(request.props).map((prop) => `${request.id}.${prop}`).filter((ref) => !capabilities.set.includes(ref));
    if (refused.length > 0) return answer(request.seq, 'prop_not_allowed', `not in embed.bridge.host_may_set: ${refused.join(', ')}`);
    const failed = dash ? await dash.setProps(request.id, request.props) : 'not_supported';
    answer(request.seq, failed, failed === undefined ? '' : `${request.id}: ${failed.replace(/_/g, ' ')}`);
  };

  const receive = ({ data }: MessageEvent): void => {
    const seq = typeof (data as { seq?: unknown } | null)?.seq === 'number' ? (data as { seq: number }).seq : undefined;
    const refuse = (code: BridgeErrorCode, message: string): void => (seq === undefined ? error(code, message) : answer(seq, code, message));
    if (!incoming()) return refuse('rate_limited', 'over the rate limit');
    if (jsonSize(data) > MAX_BRIDGE_MESSAGE_BYTES) return refuse('message_too_large', 'over 64 KB');
    if (!isBridgeHostMessage(data)) return refuse('invalid_message', 'not a valid bridge request');
    void apply(data);
  };

  // Where the app is, and how tall: sent when they change.
  let path = '';
  const reportPath = (): void => {
    const now = location.pathname + location.search + location.hash;
    if (now !== path) send({ type: 'navigate', path: path = now }, 'the path');
  };
  for (const method of ['pushState', 'replaceState'] as const) {
    const original = history[method].bind(history);
    history[method] = (...args: Parameters<History['pushState']>): void => {
      original(...args);
      reportPath();
    };
  }
  addEventListener('popstate', reportPath);
  addEventListener('hashchange', reportPath);
  let height = -1;
  let frame = 0;
  const reportHeight = (): void => {
    frame = 0;
    const now = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (now !== height) send({ type: 'resize', height: height = now }, 'the height');
  };
  const sizes = new ResizeObserver(() => {
    frame ||= requestAnimationFrame(reportHeight);
  });

  const hello = (): void => {
    for (const target of targetOrigins({ ancestorOrigins: location.ancestorOrigins, referrer: document.referrer, self: location.origin, allowed: origins })) {
      const channel = new MessageChannel();
      channel.port1.onmessage = receive;
      ports.push(channel.port1);
      window.parent.postMessage({ embedgate: PROTOCOL_VERSION, type: 'bridge-hello' }, target, [channel.port2]);
    }
    post({ type: 'bridge-ready', capabilities });
    path = '';
    height = -1;
    reportPath();
    if (document.body) reportHeight();
    dash?.republish();
  };

  hello();
  // A host page that attaches after this page loaded asks for the hello again.
  addEventListener('message', (event) => {
    if (event.source === window.parent && origins.includes(event.origin) && isAttach(event.data)) {
      for (const port of ports.splice(0)) port.close();
      hello();
    }
  });
  const observe = (): void => {
    sizes.observe(document.documentElement);
    if (document.body) sizes.observe(document.body);
  };
  if (document.body) observe();
  else addEventListener('DOMContentLoaded', observe);

  dash?.publish(capabilities.publish.flatMap((ref) => parsePropRef(ref) ?? []), (id, prop, value) => {
    if (isJsonValue(value)) send({ type: 'props', id, prop, value }, `${id}.${prop}`);
    else error('invalid_message', `${id}.${prop}: not JSON, not sent`);
  });

  if (capabilities.events) {
    const api = ((window as unknown as { embedgate?: Record<string, unknown> }).embedgate ??= {});
    api.emit = (name: unknown, data: unknown = null): void => {
      if (!isEventName(name)) throw new TypeError('embedgate.emit: bad event name');
      if (!isJsonValue(data)) throw new TypeError('embedgate.emit: data must be plain JSON');
      send({ type: 'event', name, data }, `event ${name}`);
    };
    api.on = (name: string, listener: (data: unknown) => void): (() => void) => {
      let set = handlers.get(name);
      if (!set) handlers.set(name, set = new Set());
      set.add(listener);
      return () => set.delete(listener);
    };
  }
}
