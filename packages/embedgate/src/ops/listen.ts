// Starts an HTTP server on a configured `host:port` (IPv6 hosts in brackets), rejecting on errors such as EADDRINUSE.
import type { Server } from 'node:http';

export async function listenOn(server: Server, listen: string): Promise<void> {
  const separator = listen.lastIndexOf(':');
  const host = listen.slice(0, separator).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(separator + 1));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
