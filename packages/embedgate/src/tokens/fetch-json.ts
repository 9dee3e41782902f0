// Fetches a JSON document from an IdP with a timeout and a size cap; redirects are not followed.
import { request } from 'undici';

const MAX_DOCUMENT_BYTES = 512 * 1024;

export async function fetchJson(url: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const signal = AbortSignal.timeout(timeoutMs);
  const response = await request(url, {
    method: 'GET',
    headers: { accept: 'application/json' },
    signal,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  if (response.statusCode !== 200) {
    await response.body.dump();
    throw new Error(`HTTP ${response.statusCode} from ${url}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += (chunk as Buffer).length;
    if (size > MAX_DOCUMENT_BYTES) {
      response.body.destroy();
      throw new Error(`response from ${url} is larger than ${MAX_DOCUMENT_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new Error(`response from ${url} is not JSON`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error(`response from ${url} is not a JSON object`);
  }
  return parsed as Record<string, unknown>;
}
