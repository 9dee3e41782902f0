// The service worker of cookieless embedding (served at /_embedgate/worker.js, registered by the bootstrap page with
// the app's prefix as scope). For browsers that refuse every cookie in a cross-site frame: it holds the embed
// session's handle in memory and puts it on every request the frame makes to the gateway's own origin — navigations,
// scripts, styles, images, fetch/XHR — and on nothing bound elsewhere. It learns each renewed handle from the session
// answers it passes on, and tells its pages. When the browser stopped it and its memory is gone, a navigation goes to
// the network untouched (the gateway answers it with the bootstrap page); other requests ask the pages it controls,
// and where none has the handle, go as they are (the gateway answers 401, and the frame script renews the session).
import { HANDLE_HEADER, isWorkerMessage, NAVIGATION_HEADER, SESSION_PATH, type WorkerMessage } from './worker-protocol.js';

declare const self: ServiceWorkerGlobalScope;

let handle = '';
/** False only in a worker the browser started afresh: its memory is gone, and its pages may still hold the handle. */
let known = false;
const ASK_PAGES_MS = 1000;

self.addEventListener('install', () => void self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

const pages = (): Promise<readonly WindowClient[]> => self.clients.matchAll({ type: 'window' });

/** Keeps the handle and tells every page this worker controls. */
async function keep(value: string): Promise<void> {
  handle = value;
  known = true;
  for (const page of await pages()) page.postMessage({ embedgate: 1, type: 'handle', handle } satisfies WorkerMessage);
}

self.addEventListener('message', (event) => {
  const data: unknown = event.data;
  // Only pages of the gateway's own origin can message a worker; the check costs nothing.
  if (event.origin !== self.location.origin || !isWorkerMessage(data)) return;
  if (data.type === 'handle') {
    handle = data.handle;
    known = true;
  }
  else if (data.type === 'get-handle') event.ports[0]?.postMessage({ handle });
  else event.waitUntil(keep(handle));
});

/** The handle from a page this worker controls (each answers on a port), or '' when none has it in time. */
async function handleFromPages(): Promise<string> {
  const clients = await pages();
  return new Promise((resolve) => {
    let left = clients.length;
    const timer = setTimeout(resolve, ASK_PAGES_MS, '');
    if (left === 0) resolve('');
    for (const client of clients) {
      const { port1, port2 } = new MessageChannel();
      port1.onmessage = ({ data }: MessageEvent<{ handle?: unknown }>) => {
        if (typeof data.handle === 'string' && data.handle) resolve(handle = data.handle);
        else if (--left === 0) resolve('');
        if (handle || left === 0) clearTimeout(timer);
      };
      client.postMessage({ embedgate: 1, type: 'get-handle' } satisfies WorkerMessage, [port2]);
    }
  });
}

/** The request again, same-origin, with the handle; navigations keep their redirects for the page to follow. */
async function withHandle(request: Request): Promise<Response> {
  // A handle cleared at sign-out stays cleared; only a worker that lost its memory asks its pages.
  const current = handle || (known ? '' : await handleFromPages());
  if (!current) return fetch(request);
  const headers = new Headers(request.headers);
  headers.set(HANDLE_HEADER, current);
  if (request.mode === 'navigate') headers.set(NAVIGATION_HEADER, request.destination || 'document');
  const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
  const response = await fetch(request.url, {
    method: request.method,
    headers,
    body: hasBody ? await request.arrayBuffer() : null,
    mode: 'same-origin',
    credentials: 'same-origin',
    cache: request.cache,
    redirect: request.mode === 'navigate' ? 'manual' : request.redirect,
    referrer: request.referrer,
    referrerPolicy: request.referrerPolicy,
    integrity: request.integrity,
    signal: request.signal,
  });
  if (new URL(request.url).pathname === SESSION_PATH) await learn(request.method, response);
  return response;
}

/** A renewed session's answer carries the new handle; an ended one ('DELETE') leaves none. */
async function learn(method: string, response: Response): Promise<void> {
  if (method === 'DELETE' && response.ok) return keep('');
  if (method !== 'POST' || !response.ok) return;
  const answer = await response.clone().json().catch(() => undefined) as { handle?: unknown } | undefined;
  if (typeof answer?.handle === 'string') await keep(answer.handle);
}

self.addEventListener('fetch', (event) => {
  if (new URL(event.request.url).origin !== self.location.origin) return;
  // With no handle in memory, a navigation goes to the network untouched, as a frame navigation (the gateway answers
  // it with the bootstrap page, which makes a new session); a request made again here would not say it is one.
  if (!handle && event.request.mode === 'navigate') return;
  event.respondWith(withHandle(event.request));
});
