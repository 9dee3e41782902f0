// Policy evaluation in process: AppPolicy.authorize for a request matching the last of 1 or of 1,000 routes.
import { AppPolicy } from '../../packages/embedgate/src/policy/app-policy.js';
import type { Identity } from '../../packages/embedgate/src/identity/identity.js';
import { parseConfig } from '../../packages/embedgate/src/config/load.js';
import { gatewayConfig } from '../servers/embedgate.js';
import { REQUEST_PATH } from '../servers/payload.js';
import { nsPerCall } from './timing.js';

export interface PolicyFigures {
  oneRouteNs: number;
  thousandRoutesNs: number;
}

const identity: Identity = {
  issuer: 'http://127.0.0.1:1', subject: 'auth0|5f7c8ec7c33c6c004bbafe82', email: 'ana.lyst@example.com', emailVerified: true,
  roles: new Set(['analyst']), scopes: new Set(['openid', 'profile', 'email']), claims: {}, expiresAt: Math.floor(Date.now() / 1000) + 3600,
};

/** The gateway's own app config (the same `routes` the gateway children get), compiled in process. */
function policy(routes: number): AppPolicy {
  const config = parseConfig(gatewayConfig({ dir: '/nonexistent', port: 1, issuer: 'http://127.0.0.1:1', upstream: 'http://127.0.0.1:2', routes }));
  const app = config.apps[0];
  if (app === undefined) throw new Error('the bench config has no app');
  return new AppPolicy(app);
}

export async function measurePolicy(ms: number): Promise<PolicyFigures> {
  const one = policy(1);
  const thousand = policy(1000);
  for (const p of [one, thousand]) if (p.authorize(identity, REQUEST_PATH, 'GET') !== undefined) throw new Error('the bench request is not allowed');
  return {
    oneRouteNs: await nsPerCall(() => one.authorize(identity, REQUEST_PATH, 'GET'), ms, 1000),
    thousandRoutesNs: await nsPerCall(() => thousand.authorize(identity, REQUEST_PATH, 'GET'), ms, 10),
  };
}
