// Login and consent: the interaction pages oidc-provider sends browsers to, with CSRF checks and login lockouts.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { Accounts } from './accounts.js';
import type { IdpConfig } from './config.js';
import { RateLimiter } from './rate-limit.js';
import { consentPage, errorPage, loginPage, PAGE_HEADERS } from './views.js';

const MAX_FORM_BYTES = 16 * 1024;
const GENERIC_LOGIN_ERROR = 'Wrong username or password, or too many attempts. Try again later.';
const ROUTE = /^\/interaction\/([A-Za-z0-9_-]{1,64})(\/(login|confirm|abort))?$/;

function send(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { ...PAGE_HEADERS, 'content-length': Buffer.byteLength(html) });
  res.end(html);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  if (!String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export class Interactions {
  /** Failed sign-ins per username, and (four times as many allowed) per client address. */
  private readonly userFailures: RateLimiter;
  private readonly addressFailures: RateLimiter;
  private readonly issuerOrigin: string;

  constructor(
    private readonly provider: () => Provider,
    private readonly accounts: Accounts,
    private readonly config: IdpConfig,
    private readonly csrfSecret: string,
    private readonly firstParty: Set<string>,
    private readonly logger: Logger,
  ) {
    this.userFailures = new RateLimiter(config.login_failures_before_lockout, config.lockout_seconds * 1000);
    this.addressFailures = new RateLimiter(config.login_failures_before_lockout * 4, config.lockout_seconds * 1000);
    this.issuerOrigin = new URL(config.issuer).origin;
  }

  /** Handles /interaction/* paths; returns false for anything else. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    const match = ROUTE.exec(path);
    if (match === null) return false;
    const uid = match[1] as string;
    const action = match[3];
    try {
      if (action === undefined && req.method === 'GET') await this.show(req, res, uid);
      else if (action !== undefined && req.method === 'POST') await this.submit(req, res, uid, action);
      else send(res, 405, errorPage('Not allowed', 'This page only accepts the sign-in form.'));
    } catch (error) {
      if (res.headersSent) return true;
      const name = (error as Error).name;
      if (name === 'SessionNotFound' || name === 'InvalidRequest') {
        send(res, 400, errorPage('Sign-in expired', 'This sign-in page has expired or was opened in another browser. Go back to the application and start again.'));
      } else {
        this.logger.error({ err: (error as Error).message }, 'interaction failed');
        send(res, 500, errorPage('Something went wrong', 'The sign-in could not be completed. Try again.'));
      }
    }
    return true;
  }

  /**
   * The address failed sign-ins are counted against. Behind a proxy every request comes from the proxy, so the
   * address it appended to X-Forwarded-For is used (the same one the token endpoint's rate limit sees).
   */
  private clientAddress(req: IncomingMessage): string {
    if (this.config.behind_proxy) {
      const forwarded = String(req.headers['x-forwarded-for'] ?? '').split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
      const last = forwarded.at(-1);
      if (last !== undefined) return last;
    }
    return req.socket.remoteAddress ?? '';
  }

  private csrfToken(uid: string): string {
    return createHmac('sha256', this.csrfSecret).update(uid).digest('base64url');
  }

  private validCsrf(uid: string, token: string | null): boolean {
    const expected = Buffer.from(this.csrfToken(uid));
    const given = Buffer.from(token ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private async show(req: IncomingMessage, res: ServerResponse, uid: string): Promise<void> {
    const details = await this.provider().interactionDetails(req, res);
    const clientId = String(details.params.client_id ?? '');
    const client = await this.provider().Client.find(clientId);
    const clientName = client?.clientName ?? clientId;
    if (details.prompt.name === 'login') {
      send(res, 200, loginPage({ action: `/interaction/${uid}/login`, csrf: this.csrfToken(uid), clientName }));
      return;
    }
    if (this.firstParty.has(clientId)) {
      await this.grantConsent(req, res);
      return;
    }
    const scopes = String(details.params.scope ?? '').split(' ').filter((s) => s !== '');
    send(res, 200, consentPage({ action: `/interaction/${uid}/confirm`, abortAction: `/interaction/${uid}/abort`, csrf: this.csrfToken(uid), clientName, scopes }));
  }

  private async submit(req: IncomingMessage, res: ServerResponse, uid: string, action: string): Promise<void> {
    const origin = req.headers.origin;
    const form = await readForm(req);
    if ((origin !== undefined && origin !== this.issuerOrigin) || form === undefined || !this.validCsrf(uid, form.get('csrf'))) {
      send(res, 403, errorPage('Request refused', 'The form was not sent from this sign-in page. Go back to the application and start again.'));
      return;
    }
    if (action === 'login') return this.login(req, res, uid, form);
    if (action === 'confirm') return this.grantConsent(req, res);
    await this.provider().interactionFinished(req, res, { error: 'access_denied', error_description: 'The user denied access.' }, { mergeWithLastSubmission: false });
  }

  private async login(req: IncomingMessage, res: ServerResponse, uid: string, form: URLSearchParams): Promise<void> {
    const details = await this.provider().interactionDetails(req, res);
    if (details.prompt.name !== 'login') {
      send(res, 400, errorPage('Sign-in expired', 'Go back to the application and start again.'));
      return;
    }
    const username = (form.get('username') ?? '').trim().slice(0, 128);
    const password = form.get('password') ?? '';
    const userKey = username.toLowerCase();
    const addressKey = this.clientAddress(req);
    const locked = this.userFailures.blocked(userKey) || this.addressFailures.blocked(addressKey);
    const user = locked || username === '' ? undefined : await this.accounts.authenticate(username, password);
    if (user === undefined) {
      this.userFailures.hit(userKey);
      this.addressFailures.hit(addressKey);
      this.logger.warn({ audit: 'login_failed', locked }, 'sign-in failed');
      const client = await this.provider().Client.find(String(details.params.client_id ?? ''));
      send(res, 401, loginPage({
        action: `/interaction/${uid}/login`, csrf: this.csrfToken(uid), clientName: client?.clientName ?? String(details.params.client_id ?? ''),
        username, error: GENERIC_LOGIN_ERROR,
      }));
      return;
    }
    this.userFailures.reset(userKey);
    this.logger.info({ audit: 'login', sub: user.username }, 'signed in');
    await this.provider().interactionFinished(req, res, { login: { accountId: user.username } }, { mergeWithLastSubmission: false });
  }

  /** Grants what the client asked for; first-party clients get here without a consent page. */
  private async grantConsent(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const provider = this.provider();
    const details = await provider.interactionDetails(req, res);
    const accountId = details.session?.accountId;
    if (details.prompt.name !== 'consent' || accountId === undefined) {
      send(res, 400, errorPage('Sign-in expired', 'Go back to the application and start again.'));
      return;
    }
    const grant = details.grantId === undefined
      ? new provider.Grant({ accountId, clientId: String(details.params.client_id) })
      : await provider.Grant.find(details.grantId);
    if (grant === undefined) throw new Error('grant not found');
    const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: details.grantId === undefined ? { grantId } : {} }, { mergeWithLastSubmission: true });
  }
}
