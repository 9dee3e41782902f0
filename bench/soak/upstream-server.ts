// The soak's app, Dash-like: GET answers the JSON payload, POST …/_dash-update-component answers for the output the
// body names, and any WebSocket is an echo. Run as a child: node --import tsx bench/soak/upstream-server.ts PORT
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { PAYLOAD } from '../servers/payload.js';

const page = Buffer.from(PAYLOAD);
const json = { 'content-type': 'application/json' };

/** Dash's answer shape: {"multi": true, "response": {id: {property: value}}} for the output the request named. */
function callbackAnswer(body: string): { status: number; text: string } {
  try {
    const { output } = JSON.parse(body) as { output?: unknown };
    if (typeof output !== 'string' || !output.includes('.')) return { status: 400, text: '{"error":"no output"}' };
    const [id, property] = output.split('.') as [string, string];
    return { status: 200, text: JSON.stringify({ multi: true, response: { [id]: { [property]: `rows for ${output}` } } }) };
  } catch {
    return { status: 400, text: '{"error":"not JSON"}' };
  }
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.once('end', () => {
    if (req.method === 'POST' && (req.url ?? '').endsWith('/_dash-update-component')) {
      const answer = callbackAnswer(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(answer.status, { ...json, 'content-length': String(Buffer.byteLength(answer.text)) });
      res.end(answer.text);
      return;
    }
    res.writeHead(200, { ...json, 'content-length': String(page.length) });
    res.end(page);
  });
});
server.keepAliveTimeout = 65_000;

const sockets = new WebSocketServer({ noServer: true, perMessageDeflate: false });
server.on('upgrade', (req, socket, head) => {
  sockets.handleUpgrade(req, socket, head, (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => undefined);
  });
});
server.listen(Number(process.argv[2]), '127.0.0.1');
