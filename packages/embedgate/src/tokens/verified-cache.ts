// A bounded map from token to verified identity; entries never outlive the token's `exp`.
import type { Identity } from '../identity/identity.js';

/**
 * Entries are found by the token's last characters (its signature's end) and then compared whole. A header value is a
 * new string on every request, and hashing all of a ~1 KB token took ~1.5 µs per lookup; 32 characters take a tenth.
 * A token that merely ends like a cached one (a signature copied under other claims) finds no verdict.
 */
const KEY_LENGTH = 32;
const keyOf = (token: string): string => token.slice(-KEY_LENGTH);

interface Entry {
  token: string;
  identity: Identity;
}

export class VerifiedTokenCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxEntries: number) {}

  get(token: string, nowSeconds: number): Identity | undefined {
    const key = keyOf(token);
    const entry = this.entries.get(key);
    if (entry === undefined || entry.token !== token) return undefined;
    if (entry.identity.expiresAt <= nowSeconds) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.identity;
  }

  set(token: string, identity: Identity): void {
    if (this.maxEntries === 0) return;
    const key = keyOf(token);
    if (this.entries.size >= this.maxEntries && !this.entries.has(key)) {
      // Oldest first: Map iteration follows insertion order.
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    this.entries.set(key, { token, identity });
  }

  /** Forgets every verdict for one issuer, e.g. after it withdrew a signing key. */
  dropIssuer(issuer: string): void {
    for (const [key, entry] of this.entries) {
      if (entry.identity.issuer === issuer) this.entries.delete(key);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
