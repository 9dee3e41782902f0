// `embedgate token`: gets an access token (client-credentials or device flow) and prints only the token on stdout.
import { parseArgs } from 'node:util';
import * as client from 'openid-client';

const USAGE = `Usage:
  embedgate token --issuer URL --client-credentials --client-id ID [--scope "A B"] [--resource URL] [--json]
  embedgate token --issuer URL --device --client-id ID [--scope "A B"] [--resource URL] [--json]

Gets an access token from an OpenID provider and prints it on stdout followed by a newline, and nothing
else, so that  curl -H "Authorization: Bearer $(embedgate token …)" URL  works. Messages go to stderr.

Options:
  --issuer URL            the provider's issuer; https, or http only for 127.0.0.1, ::1 and localhost
                          (env EMBEDGATE_ISSUER)
  --client-id ID          the OAuth client (env EMBEDGATE_CLIENT_ID)
  --client-secret SECRET  the client's secret; prefer env EMBEDGATE_CLIENT_SECRET, because command-line
                          flags are visible to every local user in \`ps\`
  --client-credentials    machine flow: the client authenticates as itself (needs the secret)
  --device                device flow: prints a URL and a code, then waits until a person approves
  --auth-method METHOD    how the secret is sent: basic (Authorization header, default) or post (form body)
  --scope "A B"           space-separated scopes to ask for
  --resource URL          the API the token is for (RFC 8707), e.g. the gateway's URL; becomes the token's aud
  --json                  print the whole token response as JSON instead of the access token
  -h, --help              show this help

Exit codes: 0 token printed, 1 the provider refused or could not be reached, 2 bad usage.`;

const OPTIONS = {
  issuer: { type: 'string' },
  'client-id': { type: 'string' },
  'client-secret': { type: 'string' },
  'client-credentials': { type: 'boolean' },
  device: { type: 'boolean' },
  'auth-method': { type: 'string' },
  scope: { type: 'string' },
  resource: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);
const AUTH_METHODS = ['basic', 'post'] as const;

interface TokenRequest {
  issuer: URL;
  flow: 'client-credentials' | 'device';
  clientId: string;
  clientSecret: string | undefined;
  authMethod: (typeof AUTH_METHODS)[number];
  scope: string | undefined;
  resource: string | undefined;
  json: boolean;
}

type Parsed = { ok: true; request: TokenRequest } | { ok: false; exitCode: number };

type TokenResponse = client.TokenEndpointResponse;

class UsageError extends Error {}

function fromEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** https anywhere; plain http only to this machine, where nothing crosses the network. */
function isSafeUrl(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
}

function parseIssuer(raw: string | undefined): URL {
  if (raw === undefined) throw new UsageError('--issuer URL (or EMBEDGATE_ISSUER) is required');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--issuer is not a URL: ${printable(raw)}`);
  }
  if (url.username !== '' || url.password !== '') throw new UsageError('--issuer must not contain a user name or password');
  if (url.protocol === 'http:' && !isSafeUrl(url)) {
    throw new UsageError(`refusing the plain-http issuer ${url.origin}: the client secret and tokens would cross the network unencrypted. Use https (http is allowed only for 127.0.0.1, ::1 and localhost).`);
  }
  if (!isSafeUrl(url)) throw new UsageError(`--issuer must be an https URL, not ${printable(url.protocol)}`);
  return url;
}

function parseFlow(values: { 'client-credentials'?: boolean; device?: boolean }): TokenRequest['flow'] {
  if (values['client-credentials'] === true && values.device === true) throw new UsageError('choose one of --client-credentials and --device');
  if (values['client-credentials'] === true) return 'client-credentials';
  if (values.device === true) return 'device';
  throw new UsageError('choose a flow: --client-credentials (a machine) or --device (a person at a terminal)');
}

function parseAuthMethod(raw: string | undefined): TokenRequest['authMethod'] {
  const method = raw ?? 'basic';
  if (!(AUTH_METHODS as readonly string[]).includes(method)) throw new UsageError('--auth-method must be basic or post');
  return method as TokenRequest['authMethod'];
}

function parseResource(raw: string | undefined): string | undefined {
  if (raw !== undefined && !URL.canParse(raw)) throw new UsageError(`--resource must be an absolute URL: ${printable(raw)}`);
  return raw;
}

function readFlags(args: string[]): ReturnType<typeof parseArgs<{ options: typeof OPTIONS; strict: true }>>['values'] {
  try {
    return parseArgs({ args, options: OPTIONS, strict: true }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Flags first, then EMBEDGATE_* environment variables; throws UsageError for anything missing or wrong. */
function buildRequest(args: string[], env: NodeJS.ProcessEnv): TokenRequest | 'help' {
  const values = readFlags(args);
  if (values.help === true) return 'help';
  const issuer = parseIssuer(values.issuer ?? fromEnv(env, 'EMBEDGATE_ISSUER'));
  const flow = parseFlow(values);
  const clientId = values['client-id'] ?? fromEnv(env, 'EMBEDGATE_CLIENT_ID');
  if (clientId === undefined) throw new UsageError('--client-id ID (or EMBEDGATE_CLIENT_ID) is required');
  const clientSecret = values['client-secret'] ?? fromEnv(env, 'EMBEDGATE_CLIENT_SECRET');
  if (flow === 'client-credentials' && clientSecret === undefined) {
    throw new UsageError('--client-credentials needs the client secret: set EMBEDGATE_CLIENT_SECRET (or pass --client-secret)');
  }
  if (values['client-secret'] !== undefined) {
    process.stderr.write('embedgate: warning: --client-secret is visible to other local users in `ps`; set EMBEDGATE_CLIENT_SECRET instead\n');
  }
  return {
    issuer, flow, clientId, clientSecret,
    authMethod: parseAuthMethod(values['auth-method']),
    scope: values.scope,
    resource: parseResource(values.resource),
    json: values.json === true,
  };
}

function parseTokenArgs(args: string[], env: NodeJS.ProcessEnv): Parsed {
  try {
    const request = buildRequest(args, env);
    if (request !== 'help') return { ok: true, request };
    process.stdout.write(`${USAGE}\n`);
    return { ok: false, exitCode: 0 };
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`embedgate: ${error.message}\n\n${USAGE}\n`);
    return { ok: false, exitCode: 2 };
  }
}

function clientAuth(request: TokenRequest): client.ClientAuth {
  if (request.clientSecret === undefined) return client.None();
  return request.authMethod === 'post' ? client.ClientSecretPost(request.clientSecret) : client.ClientSecretBasic(request.clientSecret);
}

/** Discovery; for a loopback http issuer, refuses discovered endpoints that would leave this machine over http. */
async function connect(request: TokenRequest): Promise<client.Configuration> {
  const insecure = request.issuer.protocol === 'http:';
  const config = await client.discovery(request.issuer, request.clientId, undefined, clientAuth(request), insecure ? { execute: [client.allowInsecureRequests] } : undefined);
  const { token_endpoint, device_authorization_endpoint } = config.serverMetadata();
  for (const endpoint of [token_endpoint, device_authorization_endpoint]) {
    if (endpoint !== undefined && !isSafeUrl(new URL(endpoint))) {
      throw new Error(`the provider's endpoint ${printable(endpoint)} is plain http on another host; refusing to send credentials to it`);
    }
  }
  return config;
}

const DEFAULT_DEVICE_SCOPE = 'openid';

function grantParameters(request: TokenRequest): Record<string, string> {
  return {
    ...(request.scope === undefined ? {} : { scope: request.scope }),
    ...(request.resource === undefined ? {} : { resource: request.resource }),
  };
}

function announce(authorization: client.DeviceAuthorizationResponse): void {
  const url = printable(authorization.verification_uri_complete ?? authorization.verification_uri);
  const code = printable(authorization.user_code);
  const step = authorization.verification_uri_complete === undefined ? `and enter the code ${code}` : `and check that it shows the code ${code}`;
  const seconds = authorization.expires_in;
  const lifetime = seconds < 120 ? `${seconds} second${seconds === 1 ? '' : 's'}` : `${Math.round(seconds / 60)} minutes`;
  process.stderr.write(`To sign in, open this address in a browser:\n\n  ${url}\n\n${step}\nWaiting for approval (the code expires in ${lifetime})…\n`);
}

/** Device flow; openid-client polls at `interval` and slows down on `slow_down`. */
async function deviceFlow(config: client.Configuration, request: TokenRequest): Promise<TokenResponse> {
  if (config.serverMetadata().device_authorization_endpoint === undefined) {
    throw new Error('the provider does not offer the device flow (its discovery document has no device_authorization_endpoint)');
  }
  // A request must ask for some scope or nothing can be granted; "openid" is the one every provider knows.
  const authorization = await client.initiateDeviceAuthorization(config, grantParameters({ ...request, scope: request.scope ?? DEFAULT_DEVICE_SCOPE }));
  announce(authorization);
  const expiry = AbortSignal.timeout(authorization.expires_in * 1000);
  const resource = request.resource === undefined ? undefined : { resource: request.resource };
  try {
    return await client.pollDeviceAuthorizationGrant(config, authorization, resource, { signal: expiry });
  } catch (error) {
    if (expiry.aborted) throw new Error(oauthMessage('expired_token', undefined));
    throw error;
  }
}

const HINTS: Record<string, string> = {
  expired_token: 'the code expired before the sign-in was approved; run the command again',
  access_denied: 'the sign-in was denied',
  invalid_client: 'check the client id, the secret and --auth-method',
};

function oauthMessage(code: string, description: string | undefined): string {
  const hint = HINTS[code];
  return [code, description, hint].filter((part) => part !== undefined && part !== '').join(': ');
}

/** The cause of a failed fetch (ECONNREFUSED, ENOTFOUND, a timeout…) or of an unexpected HTTP response. */
function causeText(cause: unknown): string {
  if (cause instanceof Response) return ` (HTTP ${cause.status})`;
  const detail = (cause as { code?: unknown; message?: unknown } | undefined);
  const text = detail?.code ?? detail?.message;
  return typeof text === 'string' ? ` (${text})` : '';
}

function describeError(error: unknown): string {
  if (error instanceof client.ResponseBodyError) return oauthMessage(error.error, error.error_description);
  if (error instanceof client.WWWAuthenticateChallengeError) {
    const parameters = error.cause[0]?.parameters;
    return oauthMessage(parameters?.error ?? `HTTP ${error.status}`, parameters?.error_description);
  }
  if (error instanceof Error) return `${error.message}${causeText(error.cause)}`;
  return String(error);
}

/** Strips terminal control characters from text that came from the network or the command line. */
function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
}

function redact(text: string, secret: string | undefined): string {
  return secret === undefined ? text : text.split(secret).join('[redacted]');
}

export async function tokenCommand(args: string[]): Promise<number> {
  const parsed = parseTokenArgs(args, process.env);
  if (!parsed.ok) return parsed.exitCode;
  const { request } = parsed;
  let stage = `discovery of ${request.issuer.href} failed`;
  try {
    const config = await connect(request);
    stage = 'token request failed';
    const response = request.flow === 'device'
      ? await deviceFlow(config, request)
      : await client.clientCredentialsGrant(config, grantParameters(request));
    process.stdout.write(request.json ? `${JSON.stringify(response)}\n` : `${response.access_token}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`embedgate: ${stage}: ${printable(redact(describeError(error), request.clientSecret))}\n`);
    return 1;
  }
}
