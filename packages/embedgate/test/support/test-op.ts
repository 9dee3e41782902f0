// A real, well-behaved OpenID provider (oidc-provider) issuing RS256 JWT access tokens via client_credentials for one resource.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import type { Configuration, errors as oidcErrors, ResourceServer } from 'oidc-provider';

export interface TestOpClient {
  client_id: string;
  client_secret: string;
  /** Extra claims put into this client's access tokens (sub, iss, aud, exp etc. cannot be overridden). */
  claims?: Record<string, unknown>;
}

export interface TestOpOptions {
  /** The resource indicator (RFC 8707) tokens are issued for; it becomes their aud. */
  resource: string;
  clients: TestOpClient[];
  /** Emit each client's `roles` claim under this name instead (e.g. "groups"). */
  rolesClaim?: string;
  /** A fixed port (default: any free one). */
  port?: number;
}

export interface TestOp {
  readonly issuer: string;
  readonly url: string;
  /** Runs a real client_credentials grant for opts.resource and returns the JWT access token. */
  token(clientId: string, scope?: string): Promise<string>;
  close(): Promise<void>;
}

export const RESOURCE_SCOPES = 'read write';
export const ACCESS_TOKEN_TTL_SECONDS = 600;
const TOKEN_PATH = '/token'; // oidc-provider's default route

export async function startTestOp(opts: TestOpOptions): Promise<TestOp> {
  const server = createServer();
  server.listen(opts.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await attachProvider(server, issuer, opts).catch(async (error: unknown) => {
    await closeServer(server);
    throw error;
  });
  return {
    issuer,
    url: issuer,
    token: (clientId, scope) => requestToken(issuer, opts, clientId, scope),
    close: () => closeServer(server),
  };
}

async function attachProvider(server: Server, issuer: string, opts: TestOpOptions): Promise<void> {
  const { default: Provider, errors } = await quietly(() => import('oidc-provider'));
  const configuration = await providerConfiguration(opts, errors);
  const provider = await quietly(async () => new Provider(issuer, configuration));
  server.on('request', provider.callback());
}

async function providerConfiguration(opts: TestOpOptions, errors: typeof oidcErrors): Promise<Configuration> {
  return {
    jwks: { keys: [await generateSigningJwk()] },
    clients: opts.clients.map(({ client_id, client_secret }) => ({
      client_id,
      client_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    })),
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        getResourceServerInfo: async (_ctx, resourceIndicator): Promise<ResourceServer> => {
          if (resourceIndicator !== opts.resource) throw new errors.InvalidTarget();
          return {
            audience: opts.resource,
            scope: RESOURCE_SCOPES,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    ttl: { ClientCredentials: ACCESS_TOKEN_TTL_SECONDS },
    extraTokenClaims: async (_ctx, token) => clientClaims(opts, token.clientId),
  };
}

async function generateSigningJwk(): Promise<object> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: 'test-op-rs256', use: 'sig', alg: 'RS256' };
}

function clientClaims(opts: TestOpOptions, clientId: string | undefined): Record<string, unknown> | undefined {
  const claims = opts.clients.find((client) => client.client_id === clientId)?.claims;
  if (claims === undefined || opts.rolesClaim === undefined || !('roles' in claims)) return claims;
  const { roles, ...rest } = claims;
  return { ...rest, [opts.rolesClaim]: roles };
}

async function requestToken(issuer: string, opts: TestOpOptions, clientId: string, scope?: string): Promise<string> {
  const client = opts.clients.find((candidate) => candidate.client_id === clientId);
  if (client === undefined) throw new Error(`test-op: unknown client ${clientId}`);
  const body = new URLSearchParams({ grant_type: 'client_credentials', resource: opts.resource });
  if (scope !== undefined) body.set('scope', scope);
  const response = await fetch(`${issuer}${TOKEN_PATH}`, {
    method: 'POST',
    headers: { authorization: basicAuth(client.client_id, client.client_secret) },
    body,
  });
  const json = (await response.json()) as { access_token?: string };
  if (!response.ok || json.access_token === undefined) {
    throw new Error(`test-op: token request failed (${response.status}): ${JSON.stringify(json)}`);
  }
  return json.access_token;
}

// RFC 6749 §2.3.1: credentials are form-urlencoded before being base64-encoded.
function basicAuth(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

// oidc-provider prints development notices (Node 20 "unsupported runtime", in-memory adapter) that are noise in tests.
async function quietly<T>(action: () => Promise<T>): Promise<T> {
  const { warn, info } = console;
  const unlessOidcNotice = (print: (...args: unknown[]) => void) => (...args: unknown[]) => {
    if (!String(args[0]).startsWith('oidc-provider ')) print(...args);
  };
  console.warn = unlessOidcNotice(warn);
  console.info = unlessOidcNotice(info);
  try {
    return await action();
  } finally {
    console.warn = warn;
    console.info = info;
  }
}

async function closeServer(server: Server): Promise<void> {
  const closed = new Promise((resolve) => server.close(resolve));
  server.closeAllConnections();
  await closed;
}
