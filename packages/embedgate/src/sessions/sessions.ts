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

/**
 * How long a renewed session's record stays as a pointer to its successor (never past its own end). Until then the
 * replaced value still authenticates, as the successor: requests the browser sent before the renewal's answer came
 * back (another frame's callback, a WebSocket opened at that moment) are not refused. And frames that share one
 * cookie renew on their own timers: one that sends the cookie another has just replaced continues the same chain
 * instead of starting a second one (whose WebSockets no renewal would follow). Ending the chain ends it at once.
 */
export const SUCCESSOR_POINTER_SECONDS = 30;
/** A token that would extend a session by less than this (and carries the same roles) does not renew it. */
const MIN_RENEWAL_GAIN_SECONDS = 2;
/** Renewal chains are followed this far at most. */
const MAX_POINTER_HOPS = 8;

/** Embed sessions kept for reuse between requests (see Sessions.find), at most. */
const RECENT_SESSIONS = 10_000;

/** Identities kept for reuse, so that per-identity caches (the upstream assertion) hold across a session's requests. */
const REUSED_IDENTITIES = 10_000;

export class Sessions {
  private readonly endListeners = new Set<SessionEndListener>();
  /** Told when session-end events may have been missed, to check the sessions they hold in the store. */
  private readonly recheckListeners = new Set<() => void>();
  private listening = false;
  /** Session id → the identity last built for it, and the record version (a refresh changes it) it was built from. */
  private readonly identities = new Map<string, { version: string; identity: Identity }>();
  /**
   * Embed sessions found lately, by cookie (or handle) value, with the store's change mark when they were read: while
   * the mark holds, nothing in the store has changed, and a lookup needs neither the hash nor the store.
   */
  private readonly recent = new Map<string, { mark: string; found: FoundSession }>();
  /** Renewals in progress on this instance, by the id they replace: a second renewal of one id waits for the first. */
  private readonly renewals = new Map<string, Promise<NewSession>>();

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

  /**
   * The live session of a cookie (or handle) value; for a value a renewal replaced less than
   * SUCCESSOR_POINTER_SECONDS ago, the session that replaced it. An embed session read before is used again while the
   * store says nothing has changed since (its change mark, which another process's revocation changes too) and it has
   * not expired; login sessions, whose last use and tokens move, and replaced values are always read.
   */
  find(cookieValue: string): Promise<FoundSession | undefined> {
    if (!COOKIE_VALUE.test(cookieValue)) return Promise.resolve(undefined);
    const known = this.findKnown(cookieValue);
    if (known !== undefined) return Promise.resolve(known);
    const mark = this.store.changeMark?.();
    const id = sessionIdOf(cookieValue);
    return this.store.get(id).then((record) => {
      this.recent.delete(cookieValue);
      if (record?.replacedBy !== undefined) return this.current(record.replacedBy);
      const found = this.foundOf(id, record);
      if (mark !== undefined && found !== undefined && found.record.kind === undefined) {
        this.recent.set(cookieValue, { mark, found });
        if (this.recent.size > RECENT_SESSIONS) this.recent.delete(this.recent.keys().next().value as string);
      }
      return found;
    });
  }

  /**
   * The embed session of a cookie (or handle) value as find() read it before, when the store's change mark says
   * nothing has changed since and it has not expired; undefined when only the store can tell (find() asks it).
   */
  findKnown(cookieValue: string): FoundSession | undefined {
    const kept = this.recent.get(cookieValue);
    if (kept === undefined || kept.mark !== this.store.changeMark?.() || kept.found.record.expiresAt <= Date.now() / 1000) return undefined;
    return kept.found;
  }

  /** The session of an id, if it is live and has not been replaced. */
  async findById(id: string): Promise<FoundSession | undefined> {
    return this.foundOf(id, await this.store.get(id));
  }

  private foundOf(id: string, record: SessionRecord | undefined): FoundSession | undefined {
    if (record === undefined || record.replacedBy !== undefined) {
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

  /** The live session an id leads to: its own, or the end of its renewal chain; undefined once it has ended. */
  async current(sessionId: string): Promise<FoundSession | undefined> {
    let id = sessionId;
    for (let hop = 0; hop < MAX_POINTER_HOPS; hop += 1) {
      const record = await this.store.get(id);
      if (record === undefined) return undefined;
      if (record.replacedBy === undefined) return { id, identity: this.identityFor(record), record };
      id = record.replacedBy;
    }
    return undefined;
  }

  /** True when this cookie (or handle) value is the session's own, not one that a renewal has replaced. */
  isCurrent(session: FoundSession, cookieValue: string): boolean {
    return session.id === sessionIdOf(cookieValue);
  }

  /** True when the identity is the session's user (same issuer and subject). */
  sameUser(session: FoundSession, identity: Identity): boolean {
    return session.record.issuer === identity.issuer && session.record.subject === identity.subject;
  }

  /**
   * Whether a token gives a session something new: another user, app or roles, or a lifetime at least
   * MIN_RENEWAL_GAIN_SECONDS longer. Frames sharing one session that send the same token at once renew it once.
   */
  wouldRenew(session: FoundSession, identity: Identity, app?: string): boolean {
    const { record } = session;
    const expiresAt = Math.min(identity.expiresAt, Math.floor(Date.now() / 1000) + this.ttlSeconds);
    const sameRoles = record.roles.length === identity.roles.size && record.roles.every((role) => identity.roles.has(role));
    return !this.sameUser(session, identity) || record.app !== app || !sameRoles
      || expiresAt - record.expiresAt >= MIN_RENEWAL_GAIN_SECONDS;
  }

  /**
   * Replaces a session with a new one (new id, new cookie) for a fresh token of the same user: the old id stops
   * working at once, and points to the new one for a few seconds; WebSockets follow. Renewals of one id on this
   * instance run one after the other, so concurrent ones continue one chain. A token of another user (or for another
   * app) gets a new, unrelated session.
   */
  renew(previousId: string, identity: Identity, app?: string): Promise<NewSession> {
    const before = this.renewals.get(previousId);
    const run = (before ?? Promise.resolve(undefined)).catch(() => undefined).then(() => this.renewLatest(previousId, identity, app));
    this.renewals.set(previousId, run);
    const forget = (): void => {
      if (this.renewals.get(previousId) === run) this.renewals.delete(previousId);
    };
    run.then(forget, forget);
    return run;
  }

  private async renewLatest(previousId: string, identity: Identity, app?: string): Promise<NewSession> {
    let id = previousId;
    let record = await this.store.get(id);
    for (let hop = 0; record?.replacedBy !== undefined && hop < MAX_POINTER_HOPS; hop += 1) {
      id = record.replacedBy;
      record = await this.store.get(id);
    }
    const created = await this.create(identity, app);
    // Another user's (or app's) token starts a chain of its own; ending the old one is the caller's decision.
    if (record === undefined || record.replacedBy !== undefined || record.issuer !== identity.issuer
      || record.subject !== identity.subject || record.app !== app) return created;
    const now = Math.floor(Date.now() / 1000);
    await this.store.put({ ...record, replacedBy: created.id, expiresAt: Math.min(record.expiresAt, now + SUCCESSOR_POINTER_SECONDS) });
    this.identities.delete(id);
    await this.store.announce([{ id, successor: { id: created.id, expiresAt: created.expiresAt } }]);
    return created;
  }

  /**
   * Hears of sessions ending on any instance sharing the store. `recheck` is called when such news may have been
   * missed (the store's event channel was down and is back): the holder looks its session up again with current().
   */
  onEnd(listener: SessionEndListener, recheck?: () => void): () => void {
    if (!this.listening) {
      this.listening = true;
      this.store.onAnnounce((event) => {
        for (const each of this.endListeners) each(event.id, event.successor);
      });
      this.store.onEventGap?.(() => {
        for (const each of this.recheckListeners) each();
      });
    }
    this.endListeners.add(listener);
    if (recheck !== undefined) this.recheckListeners.add(recheck);
    return () => {
      this.endListeners.delete(listener);
      if (recheck !== undefined) this.recheckListeners.delete(recheck);
    };
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
