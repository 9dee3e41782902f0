// Fixed-window counters in memory: login lockouts per user and address, request budgets for the token endpoint.

interface Window {
  count: number;
  resetAt: number;
}

export class RateLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(private readonly limit: number, private readonly windowMs: number, private readonly maxKeys = 100_000) {}

  private current(key: string, now: number): Window | undefined {
    const window = this.windows.get(key);
    if (window !== undefined && window.resetAt <= now) {
      this.windows.delete(key);
      return undefined;
    }
    return window;
  }

  /** True when `key` has used up its budget in the current window. */
  blocked(key: string, now = Date.now()): boolean {
    return (this.current(key, now)?.count ?? 0) >= this.limit;
  }

  /** Counts one event; returns true when the budget is now used up. */
  hit(key: string, now = Date.now()): boolean {
    let window = this.current(key, now);
    if (window === undefined) {
      if (this.windows.size >= this.maxKeys) this.sweep(now);
      window = { count: 0, resetAt: now + this.windowMs };
      this.windows.set(key, window);
    }
    window.count += 1;
    return window.count >= this.limit;
  }

  /**
   * For request budgets: counts the event and returns true when it is within the budget, false (not counted) once
   * `limit` events have been allowed in the current window — so with a limit of 3 the 4th request is refused.
   */
  allow(key: string, now = Date.now()): boolean {
    if (this.blocked(key, now)) return false;
    this.hit(key, now);
    return true;
  }

  reset(key: string): void {
    this.windows.delete(key);
  }

  private sweep(now: number): void {
    for (const [key, window] of this.windows) if (window.resetAt <= now) this.windows.delete(key);
    // Still full of live windows: forget the oldest rather than grow without bound.
    while (this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value as string);
  }
}
