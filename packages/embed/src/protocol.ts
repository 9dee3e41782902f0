// Messages between the host page (host SDK) and the framed app (frame script); shared by both sides.

export const PROTOCOL_VERSION = 1;

/** Frame → host, via window.postMessage to the exact host origin, with a MessageChannel port transferred. */
export interface HelloMessage {
  embedgate: typeof PROTOCOL_VERSION;
  type: 'hello';
}

/** Frame → host on the port. */
export type FrameMessage =
  | { type: 'token-request' }
  | { type: 'ready' }
  | { type: 'signed-out' }
  | { type: 'forbidden'; message?: string }
  | { type: 'error'; message: string };

/** Host → frame on the port. */
export type HostMessage =
  | { type: 'token'; token: string }
  | { type: 'no-token'; reason: 'signed-out' | 'error'; message?: string }
  | { type: 'sign-out' };

/** The gateway's answer to POST /_embedgate/session (JSON). */
export interface SessionResponse {
  /** Seconds since the epoch when the session ends (never after the token's exp). */
  expires_at: number;
}

/** The frame's hello (`hello`, for sign-in) or its bridge's (`bridge-hello`), by type; false for anything else. */
export function helloType(data: unknown): string | false {
  const type = typeof data === 'object' && data !== null && (data as HelloMessage).embedgate === PROTOCOL_VERSION && (data as { type?: unknown }).type;
  return (type === 'hello' || type === 'bridge-hello') && type;
}

export function isHello(data: unknown): data is HelloMessage {
  return helloType(data) === 'hello';
}

/**
 * Host → frame via window.postMessage to the exact gateway origin: "say hello again". The host SDK sends it when
 * it attaches, so a frame that loaded (and said hello) before attach() ran, or whose port was closed by detach(),
 * can hand over a new port. It carries nothing; the frame accepts it only from window.parent and an allowed origin.
 */
export interface AttachMessage {
  embedgate: typeof PROTOCOL_VERSION;
  type: 'attach';
}

export function isAttach(data: unknown): data is AttachMessage {
  return typeof data === 'object' && data !== null
    && (data as AttachMessage).embedgate === PROTOCOL_VERSION && (data as AttachMessage).type === 'attach';
}
