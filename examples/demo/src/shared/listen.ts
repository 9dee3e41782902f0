// Starting and stopping a sample app's HTTP server: binds the port, reports listening errors to the caller and
// closes idle keep-alive connections so that close() does not hang on a browser that still holds one.
import type { Server } from 'node:http';

/** A running sample upstream app. */
export interface SampleApp {
  /** The origin the app listens on, without its path prefix, e.g. `http://127.0.0.1:8050`. */
  url: string;
  close(): Promise<void>;
}

/** Options shared by the sample apps. */
export interface SampleAppOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Address to bind; 127.0.0.1 unless told. */
  host?: string;
  /** Path prefix every URL of the app lives under, with leading and trailing slashes added when missing. */
  prefix?: string;
}

/** `/sales`, `sales/` and `/sales/` all become `/sales/`; anything but plain URL path characters is refused. */
export function normalizePrefix(prefix: string): string {
  if (!/^[\w.~/-]*$/.test(prefix)) {
    throw new TypeError(`prefix ${JSON.stringify(prefix)} has characters a URL path needs escaped`);
  }
  const trimmed = prefix.replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? '/' : `/${trimmed}/`;
}

function originFor(host: string, port: number): string {
  if (host === '0.0.0.0' || host === '::') return `http://127.0.0.1:${port}`;
  return host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}

/** Listens on host:port; rejects with Node's own error (EADDRINUSE, EACCES…) instead of crashing. */
export function listen(server: Server, port: number, host: string, beforeClose?: () => void): Promise<SampleApp> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error): void => reject(error);
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      const address = server.address();
      const actualPort = typeof address === 'object' && address !== null ? address.port : port;
      resolve({
        url: originFor(host, actualPort),
        close: () =>
          new Promise<void>((done, failClose) => {
            beforeClose?.();
            server.close((error) => (error ? failClose(error) : done()));
            server.closeAllConnections();
          }),
      });
    });
  });
}
