// Finds the bearer token of a request: only the Authorization header, never the query string or a form.
import type { IncomingMessage } from 'node:http';
import type { Denial } from '../http/respond.js';

export type Credential = { kind: 'none' } | { kind: 'bearer'; token: string } | { kind: 'invalid'; denial: Denial };

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

export function readCredential(req: IncomingMessage): Credential {
  const header = req.headers.authorization;
  if (header === undefined || header === '') return { kind: 'none' };
  if (!/^bearer(\s|$)/i.test(header)) return { kind: 'none' };
  const match = BEARER.exec(header);
  if (match === null) {
    return {
      kind: 'invalid',
      denial: { status: 400, error: 'invalid_request', message: 'The Authorization header must hold exactly one bearer token.', bearerError: 'invalid_request' },
    };
  }
  return { kind: 'bearer', token: match[1] as string };
}
