// The caller as the gateway understands it after a token was verified.
import type { JWTPayload } from 'jose';

export interface Identity {
  issuer: string;
  subject: string;
  email: string | undefined;
  emailVerified: boolean | undefined;
  roles: ReadonlySet<string>;
  scopes: ReadonlySet<string>;
  claims: Readonly<JWTPayload>;
  /** Seconds since the epoch after which the credential is no longer valid. */
  expiresAt: number;
}
