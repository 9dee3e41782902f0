// requireAuth for Express and Fastify: real apps on 127.0.0.1 trusting a forging OP answer exactly as the gateway does.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { ConfigError } from '../src/config/load.js';
import type { Identity } from '../src/identity/identity.js';
import type { AuthOptions } from '../src/middleware/core.js';
import { requireAuth as requireExpress } from '../src/middleware/express.js';
import { requireAuth as requireFastify } from '../src/middleware/fastify.js';
import { startHostileOp, type HostileOp } from './support/hostile-op.js';

interface RunningApp {
  url: string;
  /** How many requests reached a route handler. */
  handled(): number;
  close(): Promise<void>;
}

/** Route path → the requireAuth options protecting it. */
type Routes = Record<string, AuthOptions>;

interface Seen {
  subject: string;
  roles: string[];
  scopes: string[];
}

const seen = (auth: Identity | undefined): Seen | null => (auth === undefined ? null : {
  subject: auth.subject, roles: [...auth.roles].sort(), scopes: [...auth.scopes].sort(),
});

async function startExpress(routes: Routes): Promise<RunningApp> {
  let handled = 0;
  const app = express();
  for (const [path, options] of Object.entries(routes)) {
    app.get(path, requireExpress(options), (req, res) => {
      handled += 1;
      res.json(seen(req.auth));
    });
  }
  const server = createServer(app).listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    handled: () => handled,
    close: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
    },
  };
}

async function startFastify(routes: Routes): Promise<RunningApp> {
  let handled = 0;
  const app = Fastify();
  for (const [path, options] of Object.entries(routes)) {
    app.get(path, { preHandler: requireFastify(options) }, async (request) => {
      handled += 1;
      return seen(request.auth);
    });
  }
  await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    handled: () => handled,
    close: () => app.close(),
  };
}

let op: HostileOp;
/** An issuer that is not listening: its keys can never be loaded. */
let downIssuer: string;

before(async () => {
  op = await startHostileOp();
  const down = await startHostileOp();
  downIssuer = down.issuer;
  await down.close();
});

after(async () => {
  await op.close();
});

function routes(): Routes {
  const base = { issuer: op.issuer, audience: op.audience };
  return {
    '/any': base,
    '/audiences': { ...base, audience: ['https://other.example', op.audience] },
    '/admin': { ...base, roles: ['admin', 'owner'] },
    '/reports': { ...base, scopes: ['read', 'write'] },
    '/down': { issuer: downIssuer, audience: op.audience },
  };
}

for (const [framework, start] of [['express', startExpress], ['fastify', startFastify]] as const) {
  describe(`requireAuth for ${framework}`, () => {
    let app: RunningApp;

    before(async () => {
      app = await start(routes());
    });

    after(async () => {
      await app.close();
    });

    const get = (path: string, authorization?: string): Promise<Response> => fetch(`${app.url}${path}`, {
      headers: authorization === undefined ? {} : { authorization },
    });

    /** Asserts status, JSON {"error","message"} body and the gateway's headers; returns the WWW-Authenticate value. */
    async function assertDenied(response: Response, status: number, error: string): Promise<string | null> {
      const body = await response.json() as Record<string, unknown>;
      assert.equal(response.status, status, JSON.stringify(body));
      assert.deepEqual(Object.keys(body).sort(), ['error', 'message']);
      assert.equal(body.error, error);
      assert.equal(typeof body.message, 'string');
      assert.equal(response.headers.get('content-type'), 'application/json');
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(response.headers.get('cache-control'), 'no-store');
      return response.headers.get('www-authenticate');
    }

    it('answers a request without a token with 401 missing_token and a Bearer challenge', async () => {
      const before = app.handled();
      const challenge = await assertDenied(await get('/any'), 401, 'missing_token');
      assert.equal(challenge, 'Bearer realm="embedgate"');
      assert.equal(app.handled(), before, 'the handler never runs');
    });

    it('answers a malformed Authorization header with 400 invalid_request', async () => {
      await assertDenied(await get('/any', 'Bearer two tokens'), 400, 'invalid_request');
    });

    it('refuses a token with a bad signature with 401 invalid_token', async () => {
      const forged = await op.sign(op.claims(), { key: 'rsa2', kid: op.keys.rsa.kid });
      const before = app.handled();
      const challenge = await assertDenied(await get('/any', `Bearer ${forged}`), 401, 'invalid_signature');
      assert.equal(challenge, 'Bearer realm="embedgate", error="invalid_token", error_description="invalid_signature"');
      assert.equal(app.handled(), before, 'the handler never runs');
    });

    it('refuses a token for another audience with 401 invalid_audience', async () => {
      const token = await op.sign(op.claims({ aud: 'https://other.example' }));
      const challenge = await assertDenied(await get('/any', `Bearer ${token}`), 401, 'invalid_audience');
      assert.match(challenge ?? '', /error="invalid_token"/);
    });

    it('accepts a token for any of the configured audiences and hands the identity to the handler', async () => {
      const response = await get('/audiences', `Bearer ${await op.sign(op.claims({ sub: 'svc-9' }))}`);
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { subject: 'svc-9', roles: ['analyst'], scopes: [] });
    });

    it('answers a valid token without any of the required roles with 403 forbidden', async () => {
      const before = app.handled();
      const challenge = await assertDenied(await get('/admin', `Bearer ${await op.sign(op.claims({ roles: ['analyst'] }))}`), 403, 'forbidden');
      assert.equal(challenge, null);
      assert.equal(app.handled(), before, 'the handler never runs');
    });

    it('lets a token with one of the required roles through, with req.auth set', async () => {
      const response = await get('/admin', `Bearer ${await op.sign(op.claims({ sub: 'alice', roles: ['owner', 'analyst'] }))}`);
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { subject: 'alice', roles: ['analyst', 'owner'], scopes: [] });
    });

    it('requires every listed scope: 403 insufficient_scope with a challenge when one is missing', async () => {
      const partial = await op.sign(op.claims({ scope: 'read' }));
      const challenge = await assertDenied(await get('/reports', `Bearer ${partial}`), 403, 'insufficient_scope');
      assert.equal(challenge, 'Bearer realm="embedgate", error="insufficient_scope", error_description="insufficient_scope"');

      const full = await get('/reports', `Bearer ${await op.sign(op.claims({ scope: 'write extra read' }))}`);
      assert.equal(full.status, 200);
      assert.deepEqual(((await full.json()) as Seen).scopes, ['extra', 'read', 'write']);
    });

    it('answers 503 idp_unavailable when the issuer cannot be reached', async () => {
      const token = await op.sign(op.claims({ iss: downIssuer }));
      const challenge = await assertDenied(await get('/down', `Bearer ${token}`), 503, 'idp_unavailable');
      assert.equal(challenge, null);
    });
  });
}

describe('requireAuth options', () => {
  const valid = (): AuthOptions => ({ issuer: 'https://idp.example.com', audience: 'https://api.example.com' });

  /** Asserts that building the middleware throws a ConfigError with a problem starting with `field:`. */
  function assertRefused(options: unknown, field: string): void {
    for (const requireAuth of [requireExpress, requireFastify]) {
      assert.throws(() => requireAuth(options as AuthOptions), (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.ok(error.problems.some((problem) => problem.startsWith(`${field}:`)), error.message);
        return true;
      });
    }
  }

  it('refuses an unknown option, so a typo cannot admit every signed-in caller', () => {
    assertRefused({ ...valid(), role: ['admin'] }, 'role');
  });

  it('names the option at fault, as the caller spelled it', () => {
    assertRefused({ ...valid(), issuer: 'ftp://idp.example.com' }, 'issuer');
    assertRefused({ ...valid(), audience: [] }, 'audience');
    assertRefused({ ...valid(), algorithms: ['HS256'] }, 'algorithms[0]');
    assertRefused({ ...valid(), leewaySeconds: 3600 }, 'leewaySeconds');
    assertRefused({ ...valid(), roles: [] }, 'roles');
    assertRefused({ ...valid(), scopes: [''] }, 'scopes[0]');
  });

  it('accepts the documented options', () => {
    const options: AuthOptions = {
      ...valid(), roles: ['admin'], scopes: ['read'], algorithms: ['ES256'], rolesClaim: 'realm_access.roles', preset: 'keycloak', leewaySeconds: 5,
    };
    assert.equal(typeof requireExpress(options), 'function');
    assert.equal(typeof requireFastify(options), 'function');
  });
});
