// Embed sessions: made from a verified token, looked up by cookie, ended on request; listeners hear when one ends.
import { createHash, randomBytes } from 'node:crypto';
import type { Identity } from '../identity/identity.js';
import type { SessionRecord, SessionStore } from '../sessions/types.js';

export interface NewSession {
  /** The cookie value (never stored: the store keeps its hash). */
  cookieValue: string;
  id: string;
  expiresAt: number;
}

export interface FoundSession {
  id: string;
  identity: Identity;
  /** A login session's sealed provider tokens. */
  secrets?: string;
}

/** Told when a session ends; a renewed session names its successor, so holders (WebSockets) can follow it. */
export type SessionEndListener = (id: string, successor?: { id: string; expiresAt: number }) => void;

const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;

export function sessionIdOf(cookieValue: string): string {
  return createHash('sha256').update(cookieValue).digest('base64url');
}

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

export class EmbedSessions {
  private readonly endListeners = new Set<SessionEndListener>();

  constructor(private readonly store: SessionStore, private readonly ttlSeconds: number) {}

  /** A new session for this identity; it ends at the token's exp or after the TTL, whichever is first. */
  async create(identity: Identity, ttlSeconds = this.ttlSeconds, secrets?: string): Promise<NewSession> {
    const now = Math.floor(Date.now() / 1000);
    const cookieValue = randomBytes(32).toString('base64url');
    const id = sessionIdOf(cookieValue);
    const expiresAt = Math.min(identity.expiresAt, now + ttlSeconds);
    await this.store.put({
      id,
      issuer: identity.issuer,
      subject: identity.subject,
      email: identity.email,
      emailVerified: identity.emailVerified,
      roles: [...identity.roles],
      scopes: [...identity.scopes],
      claims: identity.claims,
      expiresAt,
      createdAt: now,
      ...(secrets === undefined ? {} : { secrets }),
    });
    return { cookieValue, id, expiresAt };
  }

  async find(cookieValue: string): Promise<FoundSession | undefined> {
    if (!COOKIE_VALUE.test(cookieValue)) return undefined;
    const id = sessionIdOf(cookieValue);
    const record = await this.store.get(id);
    if (record === undefined) return undefined;
    return { id, identity: identityOf(record), ...(record.secrets === undefined ? {} : { secrets: record.secrets }) };
  }

  /** Ends a session by id; listeners (e.g. open WebSockets) are told. */
  async end(id: string): Promise<boolean> {
    const ended = await this.store.delete(id);
    for (const listener of this.endListeners) listener(id);
    return ended;
  }

  /** Replaces a session with a new one (new id, new cookie) for a fresh token; the old id stops working at once. */
  async renew(previousId: string, identity: Identity): Promise<NewSession> {
    const created = await this.create(identity);
    await this.store.delete(previousId);
    for (const listener of this.endListeners) listener(previousId, { id: created.id, expiresAt: created.expiresAt });
    return created;
  }

  onEnd(listener: SessionEndListener): () => void {
    this.endListeners.add(listener);
    return () => this.endListeners.delete(listener);
  }

  sweep(): Promise<number> {
    return this.store.sweep(Math.floor(Date.now() / 1000));
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
