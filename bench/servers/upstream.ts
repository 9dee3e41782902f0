// The fast upstream when nginx is not installed: a minimal Node HTTP server answering every request with PAYLOAD.
// Run as a child: node --import tsx bench/servers/upstream.ts PORT
import { createServer } from 'node:http';
import { PAYLOAD } from './payload.js';

const body = Buffer.from(PAYLOAD);
const headers = { 'content-type': 'application/json', 'content-length': String(body.length) };
const server = createServer((req, res) => {
  // A POST (a Dash callback) is answered once its body has been read.
  req.resume();
  req.once('end', () => {
    res.writeHead(200, headers);
    res.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2]), '127.0.0.1');
