// The one failure a session store reports to the gateway: it cannot be reached right now (503, retried later).

export class SessionStoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`the session store cannot be reached: ${(cause as Error).message}`);
    this.name = 'SessionStoreUnavailableError';
  }
}

/** The answer to a request whose session cannot be checked: bearer requests do not get here. */
export const SESSION_STORE_DENIAL = {
  status: 503,
  error: 'session_store_unavailable',
  message: 'Sessions cannot be checked right now; try again in a moment.',
  retryAfterSeconds: 2,
} as const;
