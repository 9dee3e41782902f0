// The OpenID Provider of the standalone sign-in, as openid-client sees it: discovered once (again after a failure),
// with the client's authentication at the token endpoint, the one ID token algorithm accepted, ID token signatures
// checked against the provider's keys, and a readiness report for /readyz.
import { readFile } from 'node:fs/promises';
import { importJWK, importPKCS8, type CryptoKey, type JWK } from 'jose';
import * as client from 'openid-client';
import { ConfigError } from '../config/load.js';
import type { LoginConfig } from '../config/schema.js';

/** The answer when the sign-in provider, or an issuer's keys behind a session, cannot be reached right now. */
export const PROVIDER_UNAVAILABLE = {
  status: 503,
  error: 'idp_unavailable',
  message: 'The sign-in service cannot be reached; try again shortly.',
  retryAfterSeconds: 5,
} as const;

/**
 * An openid-client failure with its cause, for the audit log: its own messages say only "invalid response
 * encountered" and the like. Causes name claims and checks, never token values.
 */
export function failureReason(error: unknown): string {
  const { message, cause } = error as Error;
  if (cause instanceof Error) return `${message}: ${cause.message}`;
  const claim = (cause as { claim?: unknown } | undefined)?.claim;
  return typeof claim === 'string' ? `${message} (${claim})` : message;
}

export interface ProviderReadiness {
  issuer: string;
  ready: boolean;
  error?: string;
}

/** Reads login.private_key (PKCS#8 PEM or a private JWK); a bad file stops start-up naming the field. */
export async function loadClientKey(login: LoginConfig): Promise<CryptoKey | undefined> {
  if (login.private_key === undefined) return undefined;
  const { file, alg } = login.private_key;
  try {
    const text = await readFile(file, 'utf8');
    const key = text.trimStart().startsWith('{') ? await importJWK(JSON.parse(text) as JWK, alg) : await importPKCS8(text, alg);
    if (key instanceof Uint8Array || key.type !== 'private') throw new Error('not a private key');
    return key;
  } catch (error) {
    throw new ConfigError([`login.private_key.file: cannot use ${file} as a ${alg} private key (${(error as Error).message})`]);
  }
}

function clientAuth(login: LoginConfig, key: CryptoKey | undefined): client.ClientAuth {
  const method = login.client_auth ?? (login.client_secret === undefined ? (key === undefined ? 'none' : 'private_key_jwt') : 'client_secret_basic');
  switch (method) {
    case 'client_secret_basic': return client.ClientSecretBasic(login.client_secret);
    case 'client_secret_post': return client.ClientSecretPost(login.client_secret);
    case 'private_key_jwt': {
      if (key === undefined) throw new Error('login.private_key is required for private_key_jwt');
      const kid = login.private_key?.kid;
      return client.PrivateKeyJwt(kid === undefined ? key : { key, kid });
    }
    case 'none': return client.None();
  }
}

export class LoginProvider {
  private discovered: Promise<client.Configuration> | undefined;
  private lastError: string | undefined;
  private ready = false;
  private readonly auth: client.ClientAuth;

  constructor(private readonly login: LoginConfig, clientKey: CryptoKey | undefined) {
    this.auth = clientAuth(login, clientKey);
  }

  /** The provider's metadata; a failed discovery is tried again on the next call. */
  configuration(): Promise<client.Configuration> {
    const url = new URL(this.login.issuer);
    this.discovered ??= client.discovery(url, this.login.client_id, {
      id_token_signed_response_alg: this.login.id_token_signing_alg,
    }, this.auth, url.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : undefined)
      .then((configuration) => {
        // openid-client trusts the token endpoint's TLS by default and would not check ID token signatures at all.
        client.enableNonRepudiationChecks(configuration);
        this.ready = true;
        this.lastError = undefined;
        return configuration;
      }, (error: unknown) => {
        this.discovered = undefined;
        this.lastError = (error as Error).message;
        throw error;
      });
    return this.discovered;
  }

  /** Starts discovery in the background, so that /readyz reports a provider that cannot be used. */
  start(): void {
    this.configuration().catch(() => undefined);
  }

  /** Whether discovery has succeeded; a provider not ready yet is tried again in the background. */
  readiness(): ProviderReadiness {
    if (!this.ready && this.discovered === undefined) this.start();
    return { issuer: this.login.issuer, ready: this.ready, ...(this.ready || this.lastError === undefined ? {} : { error: this.lastError }) };
  }
}
