// The access decision shared by HTTP requests, WebSocket upgrades and forward-auth checks.
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { Identity } from '../identity/identity.js';
import type { Denial } from '../http/respond.js';
import type { GatewayMetrics } from '../ops/metrics.js';
import type { TokenVerifier } from '../tokens/verifier.js';
import type { MountedApp } from './apps.js';
import { authenticateRequest, type AuthOutcome } from './authenticate.js';

export type Decision =
  | { kind: 'public' }
  | { kind: 'allow'; identity: Identity }
  | { kind: 'deny'; denial: Denial; identity?: Identity };

export interface AuditContext {
  requestId: string;
  ip: string;
  method: string;
  path: string;
}

export class AccessControl {
  constructor(
    private readonly verifier: TokenVerifier,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {}

  /** Authenticates the caller; returns the identity or a denial (401, 400 or 503). */
  authenticate(req: IncomingMessage): Promise<AuthOutcome> {
    return authenticateRequest(this.verifier, req);
  }

  /** Public path → public; else authenticate and apply the app's policy for this path and method. */
  async decide(req: IncomingMessage, app: MountedApp, path: string, method: string): Promise<Decision> {
    if (app.policy.isPublic(path)) return { kind: 'public' };
    const result = await this.authenticate(req);
    if ('denial' in result) return { kind: 'deny', denial: result.denial };
    const denial = app.policy.authorize(result.identity, path, method);
    if (denial !== undefined) return { kind: 'deny', denial, identity: result.identity };
    return { kind: 'allow', identity: result.identity };
  }

  /** Counts and writes the audit line for a denial; nothing secret is in it. */
  audit(denial: Denial, context: AuditContext, app: string | undefined, identity?: Identity): void {
    this.metrics.authFailures.inc({ reason: denial.error });
    this.logger.warn({
      audit: 'deny',
      reqId: context.requestId,
      status: denial.status,
      reason: denial.error,
      app,
      method: context.method,
      path: context.path,
      ip: context.ip,
      sub: identity?.subject,
      iss: identity?.issuer,
    }, 'request denied');
  }
}
