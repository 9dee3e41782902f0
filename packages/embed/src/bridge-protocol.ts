// The host ↔ app bridge's messages and the checks both halves apply to them: exact shapes, JSON values only, at most
// 64 KB, and a rate limit per frame. Pure (no DOM), so it is unit-tested in Node.

/** The largest bridge message either side accepts, as JSON text. */
export const MAX_BRIDGE_MESSAGE_BYTES = 64 * 1024;
/** Messages per second each side accepts from one frame (a burst of this many, refilled at this rate). */
export const BRIDGE_MESSAGES_PER_SECOND = 100;
/** How deep a value may nest. */
const MAX_DEPTH = 32;

/** Frame → host, via window.postMessage to the exact host origin, with the bridge's own MessageChannel port. */
export interface BridgeHelloMessage {
  embedgate: 1;
  type: 'bridge-hello';
}

/** A JSON value: what props, event data and published values may be. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** What the gateway's config lets the bridge of this app do (sent to the host when the bridge connects). */
export interface BridgeCapabilities {
  /** `component.prop` the host may set */
  set: string[];
  /** `component.prop` the app publishes */
  publish: string[];
  /** whether the app may emit named events */
  events: boolean;
  /** the app's path prefix, which navigate() stays within */
  prefix: string;
}

/** Why a request was refused or a message dropped. */
export type BridgeErrorCode =
  | 'prop_not_allowed' | 'unknown_component' | 'not_supported' | 'path_not_allowed'
  | 'invalid_message' | 'message_too_large' | 'rate_limited' | 'value_too_large' | 'not_connected' | 'timeout' | 'no_listener';

/** Host → frame on the bridge port. `seq` numbers a request; its result carries the same number. */
export type BridgeHostMessage =
  | { type: 'set-props'; seq: number; id: string; props: Record<string, JsonValue> }
  | { type: 'navigate'; seq: number; path: string }
  | { type: 'event'; seq: number; name: string; data: JsonValue };

/** Frame → host on the bridge port. */
export type BridgeFrameMessage =
  | { type: 'bridge-ready'; capabilities: BridgeCapabilities }
  | { type: 'result'; seq: number; ok: true }
  | { type: 'result'; seq: number; ok: false; code: BridgeErrorCode; message: string }
  | { type: 'props'; id: string; prop: string; value: JsonValue }
  | { type: 'event'; name: string; data: JsonValue }
  | { type: 'navigate'; path: string }
  | { type: 'resize'; height: number }
  | { type: 'bridge-error'; code: BridgeErrorCode; message: string };

const isObject = (data: unknown): data is Record<string, unknown> =>
  typeof data === 'object' && data !== null && !Array.isArray(data) && Object.getPrototypeOf(data) === Object.prototype;

/** True for plain JSON data only: no functions, dates, maps, typed arrays, class instances, NaN or Infinity. */
export function isJsonValue(value: unknown, depth = 0): value is JsonValue {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (depth >= MAX_DEPTH) return false;
  if (Array.isArray(value)) return Object.getPrototypeOf(value) === Array.prototype && value.every((item) => isJsonValue(item, depth + 1));
  return isObject(value) && Object.values(value).every((item) => isJsonValue(item, depth + 1));
}

/** The message's size as JSON text (characters), or Infinity when it is not JSON at all. */
export function jsonSize(value: unknown): number {
  try {
    return JSON.stringify(value)?.length ?? Infinity;
  } catch {
    return Infinity;
  }
}

/** A Dash component id (no dots, as Dash requires) or a prop name. */
const ID = /^[^.\s]{1,200}$/;
const PROP = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;
const EVENT_NAME = /^[\w.:-]{1,100}$/;
const seqOk = (seq: unknown): boolean => Number.isInteger(seq) && (seq as number) >= 0;

/** `component.prop` split in two, or undefined when it is not one. */
export function parsePropRef(ref: string): { id: string; prop: string } | undefined {
  const dot = ref.lastIndexOf('.');
  const id = ref.slice(0, dot);
  const prop = ref.slice(dot + 1);
  return dot > 0 && ID.test(id) && PROP.test(prop) ? { id, prop } : undefined;
}

export const isComponentId = (id: unknown): id is string => typeof id === 'string' && ID.test(id);
export const isPropName = (prop: unknown): prop is string => typeof prop === 'string' && PROP.test(prop);
export const isEventName = (name: unknown): name is string => typeof name === 'string' && EVENT_NAME.test(name);

/** The capabilities in the bridge script's `data-embedgate-bridge` (JSON), or undefined when missing or malformed. */
export function parseCapabilities(json: string | undefined): BridgeCapabilities | undefined {
  try {
    const value = JSON.parse(json ?? '') as Partial<BridgeCapabilities> | null;
    const refs = (list: unknown): list is string[] => Array.isArray(list) && list.every((ref) => typeof ref === 'string' && parsePropRef(ref) !== undefined);
    if (!value || !refs(value.set) || !refs(value.publish) || typeof value.events !== 'boolean' || typeof value.prefix !== 'string') return undefined;
    return { set: value.set, publish: value.publish, events: value.events, prefix: value.prefix };
  } catch {
    return undefined;
  }
}

/** Validates a message the frame receives on the bridge port (size checked apart). */
export function isBridgeHostMessage(data: unknown): data is BridgeHostMessage {
  if (!isObject(data) || !seqOk(data.seq)) return false;
  if (data.type === 'set-props') {
    return isComponentId(data.id) && isObject(data.props) && Object.keys(data.props).length > 0
      && Object.keys(data.props).every(isPropName) && isJsonValue(data.props);
  }
  if (data.type === 'event') return isEventName(data.name) && isJsonValue(data.data);
  return data.type === 'navigate' && typeof data.path === 'string' && data.path.length <= 2048;
}

const isCode = (code: unknown): code is BridgeErrorCode => typeof code === 'string' && /^[a-z_]{1,40}$/.test(code);
const isText = (text: unknown): text is string => typeof text === 'string' && text.length <= 1000;

/** Validates a message the host receives on the bridge port (size checked apart). */
export function isBridgeFrameMessage(data: unknown): data is BridgeFrameMessage {
  if (!isObject(data)) return false;
  switch (data.type) {
    case 'bridge-ready': return isObject(data.capabilities);
    case 'result': return seqOk(data.seq) && (data.ok === true || (data.ok === false && isCode(data.code) && isText(data.message)));
    case 'props': return isComponentId(data.id) && isPropName(data.prop) && isJsonValue(data.value);
    case 'event': return isEventName(data.name) && isJsonValue(data.data);
    case 'navigate': return typeof data.path === 'string' && data.path.startsWith('/') && data.path.length <= 2048;
    // NaN and Infinity fail the comparisons.
    case 'resize': return typeof data.height === 'number' && data.height >= 0 && data.height < 1e6;
    case 'bridge-error': return isCode(data.code) && isText(data.message);
    default: return false;
  }
}

/** A token bucket: the function returns false once more than the rate arrives (after a burst of the same size). */
export function rateLimit(perSecond = BRIDGE_MESSAGES_PER_SECOND, now: () => number = Date.now): () => boolean {
  let tokens = perSecond;
  let last = now();
  return () => {
    const at = now();
    tokens = Math.min(perSecond, tokens + ((at - last) / 1000) * perSecond);
    last = at;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}

/**
 * A path for navigate(): same origin as `self`, inside `prefix`, as path + query + hash; undefined for anything
 * else (another origin, a scheme, `..` leading out of the prefix).
 */
export function pathWithin(path: string, prefix: string, self: string): string | undefined {
  if (!path.startsWith('/') || path.startsWith('//')) return undefined;
  try {
    const url = new URL(path, self);
    return url.origin === self && url.pathname.startsWith(prefix) ? url.pathname + url.search + url.hash : undefined;
  } catch {
    return undefined;
  }
}
