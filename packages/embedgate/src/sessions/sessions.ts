// Sessions behind the gateway's cookies (embed and login): made from a verified token, looked up by cookie, ended on
// request; every instance sharing the store hears when one ends (open WebSockets close).
import { createHash, randomBytes } from 'node:crypto';
import type { Identity } from '../identity/identity.js';
import type { SessionRecord, SessionStore } from './types.js';

export interface NewSession {
  /** The cookie value (never stored: the store keeps its hash). */
  cookieValue: string;
  id: string;
  expiresAt: number;
}

export interface FoundSession {
  id: string;
  identity: Identity;
  record: SessionRecord;
}

/** Told when a session ends; a renewed session names its successor, so holders (WebSockets) can follow it. */
export type SessionEndListener = (id: string, successor?: { id: string; expiresAt: number }) => void;

const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;

export function sessionIdOf(cookieValue: string): string {
  return createHash('sha256').update(cookieValue).digest('base64url');
}

const ticketKey = (ticket: string): string => `ws:${sessionIdOf(ticket)}`;

function identityOf(record: SessionRecord): Identity {
  return {
    issuer: record.issuer,
    subject: record.subject,
    email: record.email,
    emailVerified: record.emailVerified,
    roles: new Set(record.roles),
    scopes: new Set(record.scopes),
    claims: record.claims,
    expiresAt: record.expiresAt,
  };
}

/** The provider session an access token names, when it carries one. */
function sidOf(identity: Identity): string | undefined {
  return typeof identity.claims.sid === 'string' ? identity.claims.sid : undefined;
}

/** Identities kept for reuse, so that per-identity caches (the upstream assertion) hold across a session's requests. */
const REUSED_IDENTITIES = 10_000;

export class Sessions {
  private readonly endListeners = new Set<SessionEndListener>();
  private listening = false;
  /** Session id → the identity last built for it, and the record version (a refresh changes it) it was built from. */
  private readonly identities = new Map<string, { version: string; identity: Identity }>();

  constructor(readonly store: SessionStore, private readonly ttlSeconds: number) {}

  /**
   * A new embed session for this identity; it ends at the token's exp or after the TTL, whichever is first. With
   * `app`, a worker-mode session for that app alone.
   */
  create(identity: Identity, app?: string): Promise<NewSession> {
    const now = Math.floor(Date.now() / 1000);
    return this.put(identity, { expiresAt: Math.min(identity.expiresAt, now + this.ttlSeconds), sid: sidOf(identity), app });
  }

  /** A new login session: it lives until `expiresAt` (the absolute timeout) while its access token is refreshed. */
  createLogin(identity: Identity, fields: { expiresAt: number; sid: string | undefined; secrets: string | undefined }): Promise<NewSession> {
    return this.put(identity, {
      ...fields, kind: 'login', accessExpiresAt: Math.min(identity.expiresAt, fields.expiresAt), lastSeenAt: Math.floor(Date.now() / 1000),
    });
  }

  private async put(identity: Identity, fields: Partial<SessionRecord> & { expiresAt: number }): Promise<NewSession> {
    const cookieValue = randomBytes(32).toString('base64url');
    const id = sessionIdOf(cookieValue);
    const record: SessionRecord = { ...recordFields(identity), id, createdAt: Math.floor(Date.now() / 1000), ...fields };
    if (record.sid === undefined) delete record.sid;
    if (record.secrets === undefined) delete record.secrets;
    if (record.app === undefined) delete record.app;
    await this.store.put(record);
    return { cookieValue, id, expiresAt: record.expiresAt };
  }

  find(cookieValue: string): Promise<FoundSession | undefined> {
    return COOKIE_VALUE.test(cookieValue) ? this.findById(sessionIdOf(cookieValue)) : Promise.resolve(undefined);
  }

  async findById(id: string): Promise<FoundSession | undefined> {
    const record = await this.store.get(id);
    if (record === undefined) {
      this.identities.delete(id);
      return undefined;
    }
    return { id, identity: this.identityFor(record), record };
  }

  /** The same Identity object while the record is unchanged (only a refresh rewrites it). */
  private identityFor(record: SessionRecord): Identity {
    const version = `${record.expiresAt}:${record.accessExpiresAt ?? ''}:${record.roles.join(',')}`;
    const kept = this.identities.get(record.id);
    if (kept !== undefined && kept.version === version) return kept.identity;
    const identity = identityOf(record);
    this.identities.delete(record.id);
    this.identities.set(record.id, { version, identity });
    if (this.identities.size > REUSED_IDENTITIES) this.identities.delete(this.identities.keys().next().value as string);
    return identity;
  }

  /** Stores a login session's refreshed identity (same id, same absolute timeout). */
  async update(record: SessionRecord, identity: Identity, secrets: string | undefined): Promise<FoundSession> {
    const updated: SessionRecord = {
      ...record, ...recordFields(identity), accessExpiresAt: Math.min(identity.expiresAt, record.expiresAt),
      ...(secrets === undefined ? {} : { secrets }),
    };
    await this.store.put(updated);
    return { id: record.id, identity: identityOf(updated), record: updated };
  }

  /** Ends a session by id; every instance's listeners (e.g. open WebSockets) are told. */
  async end(id: string): Promise<boolean> {
    const ended = await this.store.delete(id);
    await this.store.announce([{ id }]);
    return ended;
  }

  /** Ends sessions of one user (all, or only embed sessions), or of one provider session; returns how many there were. */
  async endWhere(issuer: string, match: { subject: string; only?: 'embed' } | { sid: string }): Promise<number> {
    const ids = 'subject' in match ? await this.store.deleteBySubject(issuer, match.subject, match.only) : await this.store.deleteBySid(issuer, match.sid);
    await this.store.announce(ids.map((id) => ({ id })));
    return ids.length;
  }

  /** Replaces a session with a new one (new id, new cookie) for a fresh token; the old id stops working at once. */
  async renew(previousId: string, identity: Identity, app?: string): Promise<NewSession> {
    const created = await this.create(identity, app);
    await this.store.delete(previousId);
    await this.store.announce([{ id: previousId, successor: { id: created.id, expiresAt: created.expiresAt } }]);
    return created;
  }

  /** Hears of sessions ending on any instance sharing the store. */
  onEnd(listener: SessionEndListener): () => void {
    if (!this.listening) {
      this.listening = true;
      this.store.onAnnounce((event) => {
        for (const each of this.endListeners) each(event.id, event.successor);
      });
    }
    this.endListeners.add(listener);
    return () => this.endListeners.delete(listener);
  }

  /**
   * A single-use WebSocket ticket for one app, bound to the session: it lives `ttlSeconds` and the store keeps only
   * its hash. For browsers whose frames carry no cookie (a WebSocket handshake carries no custom header either).
   */
  async issueTicket(sessionId: string, app: string, ttlSeconds: number): Promise<string> {
    const ticket = randomBytes(32).toString('base64url');
    await this.store.putTicket(ticketKey(ticket), JSON.stringify({ sessionId, app }), ttlSeconds);
    return ticket;
  }

  /** The live session a ticket was issued for, when the ticket is unused, unexpired and for this app; it is used up. */
  async redeemTicket(ticket: string, app: string): Promise<FoundSession | undefined> {
    if (!COOKIE_VALUE.test(ticket)) return undefined;
    const value = await this.store.takeTicket(ticketKey(ticket));
    if (value === undefined) return undefined;
    const bound = JSON.parse(value) as { sessionId: string; app: string };
    return bound.app === app ? this.findById(bound.sessionId) : undefined;
  }

  sweep(): Promise<number> {
    return this.store.sweep(Math.floor(Date.now() / 1000));
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

/** The identity part of a session record. */
function recordFields(identity: Identity): Omit<SessionRecord, 'id' | 'expiresAt' | 'createdAt'> {
  return {
    issuer: identity.issuer,
    subject: identity.subject,
    email: identity.email,
    emailVerified: identity.emailVerified,
    roles: [...identity.roles],
    scopes: [...identity.scopes],
    claims: identity.claims,
  };
}
