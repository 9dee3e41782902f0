// A WebSocket client for tests: opens a socket through the gateway, or reports the status of a refused upgrade.
import { once } from 'node:events';
import WebSocket from 'ws';

export type Opened = { ws: WebSocket } | { status: number };

export function openWebSocket(url: string, headers: Record<string, string>): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (request, response) => {
      resolve({ status: response.statusCode ?? 0 });
      request.destroy();
    });
    ws.once('error', reject);
  });
}

/** Sends `text` and resolves with the next message. */
export async function echo(ws: WebSocket, text: string): Promise<string> {
  ws.send(text);
  const [data] = (await once(ws, 'message')) as [Buffer];
  return data.toString();
}
