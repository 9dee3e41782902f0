// The host half of the bridge: takes the framed app's bridge port (after attach() checked where the hello came
// from), sends setProps/navigate requests on it and settles them with the app's results, and turns what the app
// publishes into events. Every message from the app is size-checked, validated and rate limited.
import {
  isBridgeFrameMessage, isBridgeHostMessage, jsonSize, MAX_BRIDGE_MESSAGE_BYTES, rateLimit, type BridgeErrorCode, type BridgeFrameMessage,
  type BridgeHostMessage, type JsonValue,
} from './bridge-protocol.js';

/** How long a request waits for the app (including for its bridge to connect). */
export const BRIDGE_REQUEST_TIMEOUT_MS = 15_000;
/** At most one rate-limit error event per this many milliseconds. */
const LIMIT_REPORT_MS = 1000;

/** A refused or failed bridge request (an Error named EmbedBridgeError); `code` says why. */
export interface EmbedBridgeError extends Error {
  code: BridgeErrorCode;
}

/** What the bridge reports to attach()'s listeners. */
export type BridgeEvent =
  | { type: 'props'; id: string; prop: string; value: JsonValue }
  | { type: 'event'; name: string; data: JsonValue }
  | { type: 'navigate'; path: string }
  | { type: 'resize'; height: number }
  | { type: 'error'; code: BridgeErrorCode; message: string };

export type BridgeRequest =
  | { type: 'set-props'; id: string; props: Record<string, JsonValue> }
  | { type: 'navigate'; path: string }
  | { type: 'event'; name: string; data: JsonValue };

export interface HostBridgeOptions {
  iframe: HTMLIFrameElement;
  emit(event: BridgeEvent): void;
  initialProps?: Record<string, Record<string, JsonValue>> | undefined;
  autoResize?: boolean | undefined;
}

export interface HostBridge {
  /** A new bridge port from the app (each page load of the frame sends one). */
  connect(port: MessagePort): void;
  request(request: BridgeRequest): Promise<void>;
  close(): void;
}

interface Pending {
  message: BridgeHostMessage;
  sent: boolean;
  settle(error?: EmbedBridgeError): void;
}

export function hostBridge({ iframe, emit, initialProps, autoResize }: HostBridgeOptions): HostBridge {
  let port: MessagePort | undefined;
  let ready = false;
  let seq = 0;
  let initialSent = false;
  let limit = rateLimit();
  let limitReportedAt = 0;
  const pending = new Map<number, Pending>();
  const fail = (code: BridgeErrorCode, message: string): EmbedBridgeError => Object.assign(new Error(message), { name: 'EmbedBridgeError', code });
  const refuse = (code: BridgeErrorCode, what: string): void => emit({ type: 'error', code, message: `dropped ${what} from the app` });

  const flush = (): void => {
    if (!ready || !port) return;
    for (const entry of pending.values()) {
      if (!entry.sent) port.postMessage(entry.message);
      entry.sent = true;
    }
  };

  const request = (body: BridgeRequest): Promise<void> => new Promise((resolve, reject) => {
    const id = ++seq;
    const message = { ...body, seq: id } as BridgeHostMessage;
    // Checked here too, so that a value the browser cannot send (a function, a BigInt) is refused by name at once.
    if (!isBridgeHostMessage(message)) return reject(fail('invalid_message', 'not a valid bridge request (names, and plain JSON values only)'));
    if (jsonSize(message) > MAX_BRIDGE_MESSAGE_BYTES) return reject(fail('message_too_large', 'a bridge message is limited to 64 KB'));
    const timer = setTimeout(() => entry.settle(fail('timeout', 'the app did not answer in time')), BRIDGE_REQUEST_TIMEOUT_MS);
    const entry: Pending = {
      message,
      sent: false,
      settle(error) {
        pending.delete(id);
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      },
    };
    pending.set(id, entry);
    flush();
  });

  const handle = (message: BridgeFrameMessage): void => {
    switch (message.type) {
      case 'bridge-ready':
        ready = true;
        if (!initialSent && initialProps) {
          initialSent = true;
          for (const [id, props] of Object.entries(initialProps)) {
            request({ type: 'set-props', id, props }).catch((error: EmbedBridgeError) => emit({ type: 'error', code: error.code, message: error.message }));
          }
        }
        return flush();
      case 'result':
        return pending.get(message.seq)?.settle(message.ok ? undefined : fail(message.code, message.message));
      case 'bridge-error':
        return emit({ type: 'error', code: message.code, message: message.message });
      case 'resize':
        if (autoResize) iframe.style.height = `${Math.ceil(message.height)}px`;
    }
    emit(message);
  };

  const receive = ({ data }: MessageEvent): void => {
    if (!limit()) {
      if (Date.now() - limitReportedAt < LIMIT_REPORT_MS) return;
      limitReportedAt = Date.now();
      return refuse('rate_limited', 'bridge messages over the rate limit');
    }
    if (jsonSize(data) > MAX_BRIDGE_MESSAGE_BYTES) return refuse('message_too_large', 'a bridge message over 64 KB');
    if (!isBridgeFrameMessage(data)) return refuse('invalid_message', 'a malformed bridge message');
    handle(data);
  };

  return {
    connect(next) {
      port?.close();
      port = next;
      ready = false;
      limit = rateLimit();
      // Requests sent on the previous page's port will never be answered.
      for (const entry of pending.values()) if (entry.sent) entry.settle(fail('not_connected', 'the app reloaded before it answered'));
      next.onmessage = receive;
    },
    request,
    close() {
      port?.close();
      port = undefined;
      for (const entry of pending.values()) entry.settle(fail('not_connected', 'detached'));
    },
  };
}
