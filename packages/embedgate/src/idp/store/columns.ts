// Column values both SQL stores derive the same way from what oidc-provider hands them.

/** expiresIn is in seconds; undefined (or not a finite number) means the row never expires. */
export function expiresAtFor(expiresIn: number | undefined, now: number): number | null {
  return typeof expiresIn === 'number' && Number.isFinite(expiresIn) ? Math.round(now + expiresIn * 1000) : null;
}

/** Strings stay strings; anything else (absent, or a non-string the provider should never send) is not indexed. */
export function indexValue(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}
