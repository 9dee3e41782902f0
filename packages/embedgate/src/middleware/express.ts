// Express middleware: requireAuth(options) verifies the bearer token and sets req.auth, or answers as the gateway does.
import type { RequestHandler, Response } from 'express';
import type { Identity } from '../identity/identity.js';
import type { Denial } from '../http/respond.js';
import { createAuthCheck, denialResponse, type AuthOptions } from './core.js';

export type { AuthOptions } from './core.js';
export type { Identity } from '../identity/identity.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** The verified caller, set by requireAuth. */
    auth?: Identity;
  }
}

function sendDenial(res: Response, denial: Denial): void {
  const { status, headers, body } = denialResponse(denial);
  res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) }).end(body);
}

/** Calls next() with req.auth set when the token is valid and meets the role and scope requirements. */
export function requireAuth(options: AuthOptions): RequestHandler {
  const check = createAuthCheck(options);
  return (req, res, next) => {
    check(req).then((outcome) => {
      if ('denial' in outcome) return sendDenial(res, outcome.denial);
      req.auth = outcome.identity;
      next();
    }, next);
  };
}
