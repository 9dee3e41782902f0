// Sign-ins in progress: PKCE verifier, state, nonce and the page to return to, sealed in a cookie of their own that
// lives ten minutes; a browser keeps at most login.max_parallel_logins of them (the oldest make way).
import type { Sealer } from './sealed.js';
import { transactionCookie, transactionCookieName, transactionCookies } from './cookies.js';

export const TRANSACTION_SECONDS = 600;

export interface Transaction {
  state: string;
  nonce: string;
  verifier: string;
  /** A path (and query) of this gateway. */
  returnTo: string;
}

export class Transactions {
  constructor(private readonly sealer: Sealer, private readonly max: number) {}

  /** Set-Cookie headers: the new transaction's cookie, and expired ones for the oldest beyond the cap. */
  async begin(transaction: Transaction, cookieHeader: string | undefined): Promise<string[]> {
    const existing = await Promise.all([...transactionCookies(cookieHeader)].map(async ([name, value]) => ({
      name, issuedAt: (await this.sealer.open(value))?.iat ?? 0,
    })));
    existing.sort((a, b) => b.issuedAt - a.issuedAt);
    const dropped = existing.slice(this.max - 1).map(({ name }) => transactionCookie(name, '', 0));
    const sealed = await this.sealer.seal({ ...transaction }, TRANSACTION_SECONDS);
    return [...dropped, transactionCookie(transactionCookieName(transaction.state), sealed, TRANSACTION_SECONDS)];
  }

  /** The transaction this browser started with `state`, if its cookie is there, intact and not expired. */
  async find(state: string, cookieHeader: string | undefined): Promise<{ transaction: Transaction; clear: string } | undefined> {
    const name = transactionCookieName(state);
    const value = transactionCookies(cookieHeader).get(name);
    const payload = value === undefined ? undefined : await this.sealer.open(value);
    if (payload === undefined || payload.state !== state) return undefined;
    const { nonce, verifier, returnTo } = payload;
    if (typeof nonce !== 'string' || typeof verifier !== 'string' || typeof returnTo !== 'string') return undefined;
    return { transaction: { state, nonce, verifier, returnTo }, clear: transactionCookie(name, '', 0) };
  }
}
