// Why a token was refused: a machine-readable reason and whether the caller or the IdP is at fault.

export type TokenFailure =
  | 'malformed_token' | 'token_too_large' | 'unsupported_token_format' | 'algorithm_not_allowed'
  | 'untrusted_key_reference' | 'unsupported_header' | 'unknown_issuer' | 'unknown_key' | 'invalid_signature'
  | 'invalid_issuer' | 'invalid_audience' | 'token_expired' | 'token_not_yet_valid' | 'invalid_time_claim'
  | 'missing_claim' | 'invalid_token_type' | 'weak_key' | 'invalid_token';

export class TokenError extends Error {
  constructor(readonly reason: TokenFailure, message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

/** The issuer's keys cannot be had right now, so no token of it can be checked (503, not 401). */
export class IdpUnavailableError extends Error {
  constructor(readonly issuer: string, message: string) {
    super(message);
    this.name = 'IdpUnavailableError';
  }
}
