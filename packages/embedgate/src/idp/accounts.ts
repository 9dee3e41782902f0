// User accounts of the IdP: sign-in checks, the claims oidc-provider asks for, and seeding users from config.
import type { Account, FindAccount } from 'oidc-provider';
import type { IdpConfig } from './config.js';
import { dummyVerify, hashPassword, verifyPassword } from './passwords.js';
import type { IdpStore, UserRecord } from './store/types.js';

export class Accounts {
  constructor(private readonly store: IdpStore, private readonly rolesClaim: string) {}

  /** The user when the password is right; unknown users cost the same time as known ones. */
  async authenticate(username: string, password: string): Promise<UserRecord | undefined> {
    const user = await this.store.getUser(username);
    if (user === undefined) {
      await dummyVerify(password);
      return undefined;
    }
    return (await verifyPassword(password, user.passwordHash)) ? user : undefined;
  }

  /** What a user's access tokens for the gateway carry besides the standard claims: roles and email. */
  async accessTokenClaims(username: string): Promise<Record<string, unknown>> {
    const user = await this.store.getUser(username);
    return {
      [this.rolesClaim]: user?.roles ?? [],
      ...(user?.email === undefined ? {} : { email: user.email, email_verified: true }),
    };
  }

  readonly findAccount: FindAccount = async (_ctx, sub) => {
    const user = await this.store.getUser(sub);
    if (user === undefined) return undefined;
    const account: Account = {
      accountId: user.username,
      claims: async () => ({
        sub: user.username,
        preferred_username: user.username,
        ...(user.name === undefined ? {} : { name: user.name }),
        ...(user.email === undefined ? {} : { email: user.email, email_verified: true }),
        [this.rolesClaim]: user.roles,
      }),
    };
    return account;
  };

  /** Writes the users listed in config (config wins for them); others, managed with `embedgate users`, stay. */
  async seed(users: IdpConfig['users']): Promise<void> {
    for (const user of users) {
      const existing = await this.store.getUser(user.username);
      let passwordHash = user.password_hash;
      if (passwordHash === undefined) {
        const unchanged = existing !== undefined && await verifyPassword(user.password as string, existing.passwordHash);
        passwordHash = unchanged ? existing.passwordHash : await hashPassword(user.password as string);
      }
      await this.store.putUser({ username: user.username, passwordHash, email: user.email, name: user.name, roles: user.roles });
    }
  }
}
