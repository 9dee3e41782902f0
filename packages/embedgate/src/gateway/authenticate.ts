// Turns a request's bearer token into an identity or a denial (401, 400 or 503), for the gateway and the middleware.
import type { IncomingMessage } from 'node:http';
import type { Denial } from '../http/respond.js';
import type { Identity } from '../identity/identity.js';
import { IdpUnavailableError, TokenError } from '../tokens/errors.js';
import type { TokenVerifier } from '../tokens/verifier.js';
import { readCredential } from './credentials.js';

export type AuthOutcome = { identity: Identity } | { denial: Denial };

/**
 * The identity of an Authorization header's bearer token that the verifier has cached: such a token passed the
 * header syntax check before, so the header is not parsed again.
 */
export function knownBearer(verifier: TokenVerifier, header: string | undefined): Identity | undefined {
  return header?.startsWith('Bearer ') === true ? verifier.known(header.slice(7)) : undefined;
}

export async function authenticateRequest(verifier: TokenVerifier, req: IncomingMessage): Promise<AuthOutcome> {
  const known = knownBearer(verifier, req.headers.authorization);
  if (known !== undefined) return { identity: known };
  const credential = readCredential(req);
  if (credential.kind === 'invalid') return { denial: credential.denial };
  if (credential.kind === 'none') {
    return { denial: { status: 401, error: 'missing_token', message: 'Sign-in required: send an access token as "Authorization: Bearer <token>".' } };
  }
  try {
    return { identity: await verifier.verify(credential.token) };
  } catch (error) {
    if (error instanceof TokenError) {
      return { denial: { status: 401, error: error.reason, message: error.message, bearerError: 'invalid_token' } };
    }
    if (error instanceof IdpUnavailableError) {
      return { denial: { status: 503, error: 'idp_unavailable', message: 'The identity provider cannot be reached to check your token; try again shortly.', retryAfterSeconds: 5 } };
    }
    throw error;
  }
}
