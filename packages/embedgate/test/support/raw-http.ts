// Sends hand-written HTTP/1.1 requests over a socket, for targets and headers that fetch() would rewrite.
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  /** Lower-case names; a repeated header keeps its last value (see setCookies). */
  headers: Record<string, string>;
  /** Every Set-Cookie line, in order. */
  setCookies: string[];
  body: string;
}

/**
 * Sends `GET <target>` (or another method) with the given header lines verbatim and `Connection: close`.
 * `headerLines` are raw "Name: value" strings, so duplicates and odd spellings survive.
 */
export function rawRequest(baseUrl: string, target: string, headerLines: string[] = [], method = 'GET', body = ''): Promise<RawResponse> {
  const url = new URL(baseUrl);
  const lines = [`${method} ${target} HTTP/1.1`];
  if (!headerLines.some((line) => /^host:/i.test(line))) lines.push(`Host: ${url.host}`);
  lines.push(...headerLines, 'Connection: close');
  if (body !== '') lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  const text = `${lines.join('\r\n')}\r\n\r\n${body}`;
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.write(text));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const raw = Buffer.concat(chunks).toString('latin1');
      const split = raw.indexOf('\r\n\r\n');
      const head = split === -1 ? raw : raw.slice(0, split);
      const [statusLine = '', ...headerText] = head.split('\r\n');
      const headers: Record<string, string> = {};
      const setCookies: string[] = [];
      for (const line of headerText) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const name = line.slice(0, colon).toLowerCase();
        headers[name] = line.slice(colon + 1).trim();
        if (name === 'set-cookie') setCookies.push(headers[name]);
      }
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers, setCookies, body: split === -1 ? '' : raw.slice(split + 4) });
    });
  });
}
