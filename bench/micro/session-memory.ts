// Memory per stored session: heapUsed and RSS before and after putting realistic embed sessions into the
// MemorySessionStore, through Sessions.create as the gateway does. Prints one JSON line.
// Run as a child: node --expose-gc --import tsx bench/micro/session-memory.ts COUNT
import { randomUUID } from 'node:crypto';
import type { JWTPayload } from 'jose';
import type { Identity } from '../../packages/embedgate/src/identity/identity.js';
import { MemorySessionStore } from '../../packages/embedgate/src/sessions/memory.js';
import { Sessions } from '../../packages/embedgate/src/sessions/sessions.js';

const count = Number(process.argv[2]);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

function settle(): { heapUsed: number; rss: number } {
  for (let i = 0; i < 3; i++) gc?.();
  const { heapUsed, rss } = process.memoryUsage();
  return { heapUsed, rss };
}

/** What the verifier makes of a typical access token: claims parsed from the token's JSON, as for a real user. */
function identity(n: number, now: number): Identity {
  const claims = JSON.parse(JSON.stringify({
    iss: 'https://login.example.com/', sub: `auth0|${(0x5f7c8ec7c33c + n).toString(16)}004bbafe82`, aud: ['https://gw.example.com'],
    iat: now, exp: now + 3600, azp: 'portal-spa', scope: 'openid profile email', email: `user${n}@example.com`,
    email_verified: true, roles: ['analyst'], jti: randomUUID(), sid: randomUUID(),
  })) as JWTPayload;
  return {
    issuer: claims.iss as string, subject: claims.sub as string, email: claims.email as string, emailVerified: true,
    roles: new Set(claims.roles as string[]), scopes: new Set(String(claims.scope).split(' ')), claims, expiresAt: claims.exp as number,
  };
}

const store = new MemorySessionStore();
const sessions = new Sessions(store, 3600);
const before = settle();
const now = Math.floor(Date.now() / 1000);
for (let n = 0; n < count; n++) await sessions.create(identity(n, now));
const after = settle();
const stored = (await store.list()).length;
if (stored !== count) throw new Error(`${stored} sessions stored, expected ${count}`);
process.stdout.write(`${JSON.stringify({
  sessions: count,
  heapBytesPerSession: (after.heapUsed - before.heapUsed) / count,
  rssBytesPerSession: (after.rss - before.rss) / count,
})}\n`);
