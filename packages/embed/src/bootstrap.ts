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
/** A bootstrap page again this soon after the reload means the session did not stick. */
const RELOAD_LOOP_MS = 30_000;
/** How long the service worker may take to confirm it holds the handle (a cold start on a busy or slow device can take seconds). */
const WORKER_TIMEOUT_MS = 10_000;

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

/** Registers the service worker for the app's prefix and hands it the handle; false where that cannot be done. */
async function startWorker(scope: string | undefined): Promise<boolean> {
  const workers = navigator.serviceWorker as ServiceWorkerContainer | undefined;
  if (!workers || !scope) return false;
  try {
    await workers.register(WORKER_PATH, { scope });
    const worker = (await workers.ready).active;
    return worker !== null && await handOver(worker);
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
    if (handle && !(await startWorker(scope))) return report('error', false, MESSAGES.cookie);
    // The marker lives in this frame's own history entry, which the reload keeps (sessionStorage would be shared by
    // every frame of the gateway in the tab, so two embedded apps would take each other's reload for a loop).
    let last = 0;
    try {
      last = Number((history.state as Record<string, unknown> | null)?.[RELOAD_KEY]) || 0;
      history.replaceState({ [RELOAD_KEY]: Date.now() }, '');
    } catch {
      // no history state: no loop detection
    }
    if (Date.now() - last < RELOAD_LOOP_MS) return report('error', false, MESSAGES.cookie);
    halt();
    location.reload();
  }

  openLink(config, () => {
    if (waiting()) send({ type: 'token-request' });
    else void bootstrap();
  });
}
