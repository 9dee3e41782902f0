// A bounded map from token to verified identity; entries never outlive the token's `exp`.
import type { Identity } from '../identity/identity.js';

export class VerifiedTokenCache {
  private readonly entries = new Map<string, Identity>();

  constructor(private readonly maxEntries: number) {}

  get(token: string, nowSeconds: number): Identity | undefined {
    const identity = this.entries.get(token);
    if (identity === undefined) return undefined;
    if (identity.expiresAt <= nowSeconds) {
      this.entries.delete(token);
      return undefined;
    }
    return identity;
  }

  set(token: string, identity: Identity): void {
    if (this.maxEntries === 0) return;
    if (this.entries.size >= this.maxEntries) {
      // Oldest first: Map iteration follows insertion order.
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    this.entries.set(token, identity);
  }

  /** Forgets every verdict for one issuer, e.g. after it withdrew a signing key. */
  dropIssuer(issuer: string): void {
    for (const [token, identity] of this.entries) {
      if (identity.issuer === issuer) this.entries.delete(token);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
