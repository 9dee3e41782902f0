// Puts the standalone sign-in together from login: config: the provider, the sealers, the sign-in flow and the
// session lifecycle (idle timeout, refresh), shared by the gateway's request handling and its endpoints.
import type { CryptoKey } from 'jose';
import type { Logger } from 'pino';
import type { GatewayConfig, LoginConfig } from '../config/schema.js';
import type { Sessions } from '../sessions/sessions.js';
import type { TokenVerifier } from '../tokens/verifier.js';
import { LoginFlow } from './flow.js';
import { LoginProvider } from './provider.js';
import { Sealer } from './sealed.js';
import { SessionLifecycle } from './session-lifecycle.js';

export interface Login {
  config: LoginConfig;
  provider: LoginProvider;
  flow: LoginFlow;
  lifecycle: SessionLifecycle;
}

/** Extra authorization and token request parameters: the RFC 8707 resource, or Auth0's audience. */
function extraParameters({ resource, audience }: LoginConfig): Record<string, string> {
  return { ...(resource === undefined ? {} : { resource }), ...(audience === undefined ? {} : { audience }) };
}

/** `clientKey`: login.private_key, loaded (see loadClientKey). */
export function setUpLogin(config: GatewayConfig, clientKey: CryptoKey | undefined, verifier: TokenVerifier, sessions: Sessions, logger: Logger): Login | undefined {
  const login = config.login;
  if (login === undefined) return undefined;
  const provider = new LoginProvider(login, clientKey);
  const tokenSealer = new Sealer(login.encryption_key, 'session tokens');
  const common = { login, provider, verifier, sessions, tokenSealer, extraParameters: extraParameters(login), logger };
  return {
    config: login,
    provider,
    flow: new LoginFlow({ ...common, config, transactionSealer: new Sealer(login.encryption_key, 'login transactions') }),
    lifecycle: new SessionLifecycle(common),
  };
}
