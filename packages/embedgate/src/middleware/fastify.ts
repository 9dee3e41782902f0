// Fastify preHandler hook: requireAuth(options) verifies the bearer token and sets request.auth, or answers as the gateway does.
import type { preHandlerAsyncHookHandler } from 'fastify';
import type { Identity } from '../identity/identity.js';
import { createAuthCheck, denialResponse, type AuthOptions } from './core.js';

export type { AuthOptions } from './core.js';
export type { Identity } from '../identity/identity.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller, set by requireAuth. */
    auth?: Identity;
  }
}

/** Lets the request through with request.auth set when the token is valid and meets the role and scope requirements. */
export function requireAuth(options: AuthOptions): preHandlerAsyncHookHandler {
  const check = createAuthCheck(options);
  return async (request, reply) => {
    const outcome = await check(request.raw);
    if ('denial' in outcome) {
      const { status, headers, body } = denialResponse(outcome.denial);
      // A Buffer is sent as is; a string would get "; charset=utf-8" appended to the gateway's content-type.
      return reply.code(status).headers(headers).send(Buffer.from(body));
    }
    request.auth = outcome.identity;
  };
}
