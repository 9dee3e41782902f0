// Reads a request body into memory up to a limit, for inspection before it is forwarded.
import type { IncomingMessage } from 'node:http';

export type BodyResult = { ok: true; body: Buffer } | { ok: false; tooLarge: boolean };

export async function readBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) return { ok: false, tooLarge: true };
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > limit) return { ok: false, tooLarge: true };
      chunks.push(chunk as Buffer);
    }
  } catch {
    return { ok: false, tooLarge: false };
  }
  return { ok: true, body: Buffer.concat(chunks) };
}
