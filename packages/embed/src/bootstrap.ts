// The bootstrap page's script (inlined by the gateway into what an unauthenticated framed navigation gets): say hello
// to the allowlisted parent, get a token over the MessageChannel, turn it into a session and reload into the app.
// Where the session cookie does not stick in this cross-site frame (auto mode), or in worker mode, it first registers
// the service worker that carries the session's handle on the frame's requests instead.
import {
  exchange, halt, handle, MESSAGES, openLink, readConfig, report, send, session, startSession, stopped, token, waiting,
  type FrameConfig,
} from './frame-link.js';
import { WORKER_PATH, type WorkerMessage } from './worker-protocol.js';

const RELOAD_KEY = 'embedgate:reloaded';
/** How often a frame registers its worker afresh when the browser did not route the reload to it. */
const WORKER_RETRIES = 1;
const WORKER_LOCK = 'embedgate:worker';
/** A bootstrap page again this soon after the reload means the session did not stick. */
const RELOAD_LOOP_MS = 30_000;
/** How long the service worker may take to confirm it holds the handle (a cold start on a busy or slow device can take seconds). */
const WORKER_TIMEOUT_MS = 10_000;

/** When this frame last reloaded from its bootstrap page, and how many times in a row. */
function reloadMark(): { at: number; tries: number } {
  try {
    const mark = (history.state as Record<string, { at?: unknown; tries?: unknown }> | null)?.[RELOAD_KEY];
    return { at: Number(mark?.at) || 0, tries: Number(mark?.tries) || 0 };
  } catch {
    return { at: 0, tries: 0 };
  }
}

/** auto mode: whether the browser kept the session cookie the POST set (a cross-site frame may refuse it). */
async function cookieStuck(): Promise<boolean> {
  try {
    return (await session('GET')).ok;
  } catch {
    return false;
  }
}

/** Gives the worker the handle and waits until it says it holds it. */
const handOver = (worker: ServiceWorker): Promise<boolean> => new Promise((resolve) => {
  const { port1, port2 } = new MessageChannel();
  port1.onmessage = ({ data }) => resolve(data?.handle === handle);
  setTimeout(resolve, WORKER_TIMEOUT_MS, false);
  worker.postMessage({ embedgate: 1, type: 'handle', handle } satisfies WorkerMessage);
  worker.postMessage({ embedgate: 1, type: 'get-handle' } satisfies WorkerMessage, [port2]);
});

/** Rejects after the timeout: a step the browser may never finish (a worker that never activates) must not hold the page or the lock. */
const within = <T>(work: Promise<T>): Promise<T> => Promise.race([
  work, new Promise<never>((_, reject) => setTimeout(reject, WORKER_TIMEOUT_MS, new Error('timeout'))),
]);

/**
 * The registration's own worker once it is activated. (Not `ready`, the registration the browser matches to this
 * page: with it, WebKit at times sent the second frame's reload past its worker, which never happened with this.)
 */
const registered = (registration: ServiceWorkerRegistration): Promise<ServiceWorker> => new Promise((resolve, reject) => {
  const worker = registration.installing ?? registration.waiting ?? registration.active;
  const settle = (): void => {
    if (worker?.state === 'activated') resolve(worker);
    else if (!worker || worker.state === 'redundant') reject(new Error('no worker'));
  };
  worker?.addEventListener('statechange', settle);
  settle();
});

/**
 * Takes the lock that lets one frame of the gateway at a time (in this browser partition) register its worker and
 * reload; resolves with its release. Chromium keeps a per-partition cache of registration scopes that a concurrent
 * registration can leave without the new scope: that frame's navigations then bypass its worker for good. The lock
 * is also released when this page unloads (the reload). Where Web Locks are missing, nothing is serialized.
 */
const exclusive = (): Promise<() => void> => new Promise((resolve) => {
  const none = (): void => undefined;
  if (!navigator.locks) return resolve(none);
  navigator.locks.request(WORKER_LOCK, () => new Promise<void>((release) => resolve(release))).catch(() => resolve(none));
});

/**
 * Registers the service worker for the app's prefix and hands it the handle; false where that cannot be done.
 * `renew`: a reload came back to the bootstrap page, so the browser did not route it to the worker; register it
 * afresh (unregister first), which makes the browser store and look up the registration again.
 */
async function startWorker(scope: string | undefined, renew: boolean): Promise<boolean> {
  const workers = navigator.serviceWorker as ServiceWorkerContainer | undefined;
  if (!workers || !scope) return false;
  try {
    // Listed by scope: a lookup by URL (getRegistration) goes through the cache that lost it.
    const own = new URL(scope, location.href).href;
    if (renew) await within(workers.getRegistrations().then((all) => all.find((r) => r.scope === own)?.unregister()));
    const worker = await within(registered(await workers.register(WORKER_PATH, { scope })));
    return await handOver(worker);
  } catch {
    return false;
  }
}

export function startBootstrap(config: FrameConfig | undefined = readConfig()): void {
  if (config?.mode !== 'bootstrap') return;
  let busy = false;

  async function bootstrap(): Promise<void> {
    if (busy || stopped) return;
    busy = true;
    const { embedMode, scope } = config as FrameConfig;
    let outcome = await exchange(embedMode === 'worker');
    // auto: the cookie first; where this frame refused it, the same token once more for a handle instead.
    if (outcome === 'ok' && embedMode === 'auto' && !(await cookieStuck())) outcome = await startSession(token, true);
    busy = false;
    if (stopped) return;
    if (outcome !== 'ok') return report(outcome, false);
    // The mark lives in this frame's own history entry, which the reload keeps (sessionStorage would be shared by
    // every frame of the gateway in the tab, so two embedded apps would take each other's reload for a loop).
    const { at, tries } = reloadMark();
    const again = Date.now() - at < RELOAD_LOOP_MS;
    // Back here right after the reload: the cookie did not stick, or the browser bypassed the worker (tried once more).
    if (again && (!handle || tries >= WORKER_RETRIES)) return report('error', false, MESSAGES.cookie);
    const release = handle ? await exclusive() : () => undefined;
    if (handle && !(await startWorker(scope, again))) {
      release();
      return report('error', false, MESSAGES.cookie);
    }
    try {
      history.replaceState({ [RELOAD_KEY]: { at: Date.now(), tries: again ? tries + 1 : 0 } }, '');
    } catch {
      // no history state: no loop detection
    }
    halt();
    location.reload();
  }

  openLink(config, () => {
    if (waiting()) send({ type: 'token-request' });
    else void bootstrap();
  });
}
