// Checks a token against one issuer key with fast-jwt (node:crypto, synchronous): algorithm, signature, typ, exp, nbf.
import { KeyObject, type webcrypto } from 'node:crypto';
import { createVerifier, TokenError as FastJwtError, type Algorithm } from 'fast-jwt';
import type { CryptoKey, JWTPayload } from 'jose';
import type { IssuerConfig } from '../config/schema.js';
import { TokenError } from './errors.js';

type KeyVerifier = (token: string) => JWTPayload;

const MIN_RSA_BITS = 2048;
const { codes } = FastJwtError;

/** fast-jwt's failures under the reasons the gateway reports. */
function translate(error: unknown): TokenError {
  switch ((error as FastJwtError).code) {
    case codes.invalidSignature: case codes.verifyError: return new TokenError('invalid_signature', 'the token signature is invalid');
    case codes.invalidType: return new TokenError('invalid_token_type', 'the token is not an access token');
    case codes.missingRequiredClaim: return new TokenError('missing_claim', 'the token has a missing or invalid "exp" claim');
    case codes.expired: return new TokenError('token_expired', 'JWT Expired: the access token has expired');
    case codes.inactive: return new TokenError('token_not_yet_valid', 'the token is not valid yet');
    default: return new TokenError('invalid_token', 'the token is invalid');
  }
}

/** One fast-jwt verifier per key of an issuer: jose resolves a key per algorithm, so each allows that algorithm only. */
export class KeyVerifiers {
  private readonly verifiers = new WeakMap<CryptoKey, KeyVerifier>();

  constructor(private readonly config: IssuerConfig) {}

  /** Returns the token's claims, or throws TokenError. */
  verify(token: string, key: CryptoKey, alg: Algorithm): JWTPayload {
    try {
      return this.verifierFor(key, alg)(token);
    } catch (error) {
      throw error instanceof TokenError ? error : translate(error);
    }
  }

  private verifierFor(key: CryptoKey, alg: Algorithm): KeyVerifier {
    let verifier = this.verifiers.get(key);
    if (verifier !== undefined) return verifier;
    const publicKey = KeyObject.from(key as webcrypto.CryptoKey);
    const bits = publicKey.asymmetricKeyDetails?.modulusLength;
    if (bits !== undefined && bits < MIN_RSA_BITS) throw new TokenError('weak_key', 'the signing key is too weak');
    // An SPKI PEM of the key jose imported for `alg`, and that one algorithm: fast-jwt checks the two agree.
    verifier = createVerifier({
      key: publicKey.export({ type: 'spki', format: 'pem' }) as string,
      algorithms: [alg],
      requiredClaims: ['exp'],
      clockTolerance: this.config.leeway_seconds * 1000,
      ...(this.config.require_typ === undefined ? {} : { checkTyp: this.config.require_typ }),
    }) as KeyVerifier;
    this.verifiers.set(key, verifier);
    return verifier;
  }
}
