// The page side of worker mode (served at /_embedgate/worker-page.js; the gateway adds it to app pages that came
// through the service worker): keeps a copy of the session handle the worker tells it of, so a worker the browser
// stopped can get it back, and gives the app's WebSockets their tickets.
import { useTicketedWebSockets } from './ticketed-websocket.js';
import { isWorkerMessage, type WorkerMessage } from './worker-protocol.js';

const TICKET_PATH = '/_embedgate/ws-ticket';

export function startWorkerPage(): void {
  const workers = navigator.serviceWorker as ServiceWorkerContainer | undefined;
  if (!workers?.controller) return;
  let handle = '';
  workers.addEventListener('message', (event) => {
    if (event.source !== workers.controller || !isWorkerMessage(event.data)) return;
    if (event.data.type === 'handle') handle = event.data.handle;
    else event.ports[0]?.postMessage({ handle });
  });
  workers.startMessages();
  workers.controller.postMessage({ embedgate: 1, type: 'announce' } satisfies WorkerMessage);
  useTicketedWebSockets(async (path) => {
    const response = await fetch(TICKET_PATH, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path }),
    });
    return response.ok ? ((await response.json()) as { ticket?: string }).ticket : undefined;
  });
}
