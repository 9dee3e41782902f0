// Messages between the frame's pages and the embed service worker, on the gateway's origin only.

/** The request header that carries the embed session's handle (the gateway never forwards it to the app). */
export const HANDLE_HEADER = 'x-embedgate-session';
/**
 * Set on a navigation the worker fetches again (which the browser then sends as Sec-Fetch-Mode: same-origin,
 * Sec-Fetch-Dest: empty), naming what it was (`iframe`, `document`): the gateway still answers it as a page.
 */
export const NAVIGATION_HEADER = 'x-embedgate-navigation';
export const WORKER_PATH = '/_embedgate/worker.js';
export const SESSION_PATH = '/_embedgate/session';

/**
 * Both ways: `handle`, the current handle ('' once signed out). Page → worker: `get-handle`, answered on the
 * transferred port; `announce`, "tell me the handle" (answered with a `handle` message). Worker → page: `get-handle`
 * when the browser stopped the worker and its memory is gone.
 */
export type WorkerMessage =
  | { embedgate: 1; type: 'handle'; handle: string }
  | { embedgate: 1; type: 'get-handle' }
  | { embedgate: 1; type: 'announce' };

export function isWorkerMessage(data: unknown): data is WorkerMessage {
  if (typeof data !== 'object' || data === null || (data as WorkerMessage).embedgate !== 1) return false;
  const message = data as WorkerMessage;
  return message.type === 'get-handle' || message.type === 'announce' || (message.type === 'handle' && typeof message.handle === 'string');
}
