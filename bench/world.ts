// The loopback world the load sections share: the issuer and one fast upstream, and the proxies and gateways in front
// of it, each in its own process.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startChild, waitForPort, type Child } from './children.js';
import type { Target } from './load.js';
import { createHandle, createSession, dashCallbackBody, LEAN_PREFIX, startGateway, type GatewaySetup, type RunningGateway } from './servers/embedgate.js';
import { AUDIENCE, startIssuer } from './servers/issuer.js';
import { findNginx, startNginxAuthRequest, startNginxProxy, startNginxUpstream } from './servers/nginx.js';
import { REQUEST_PATH } from './servers/payload.js';

/** One row of the side-by-side table. */
export interface HttpConfig {
  id: 'upstream' | 'bare' | 'dispatch' | 'shaped' | 'nginx' | 'bearer' | 'lean' | 'cookie' | 'handle' | 'dash' | 'nginx-auth' | 'express';
  label: string;
  target: Target;
  /** Process groups of the servers that answer the row (the gateway, the proxy, nginx's master and workers). */
  serverGroups: number[];
}

export interface World {
  /** An access token of the bench issuer for an analyst (what every configuration is sent). */
  token: string;
  /** 'nginx' or 'node': what serves the payload, and where. */
  upstreamKind: 'nginx' | 'node';
  upstreamUrl: string;
  /** The gateway with one route (the request matches it). */
  gateway: RunningGateway;
  /** The table's rows, in order; empty unless the comparison was asked for. */
  configs: HttpConfig[];
  /** Settings for one more gateway on the same issuer and upstream. */
  gatewaySetup(name: string, routes: number): Promise<GatewaySetup>;
  close(): Promise<void>;
}

/** Starts one of bench/servers/*.ts as a child on a free port (`nodeOptions`, e.g. --cpu-prof, before the script). */
async function startTsServer(name: string, file: string, args: (port: number) => string[], nodeOptions: string[] = []): Promise<{ url: string; child: Child }> {
  const port = await freePort();
  const child = startChild(name, process.execPath, [...nodeOptions, '--import', 'tsx', fileURLToPath(new URL(`./servers/${file}`, import.meta.url)), ...args(port)]);
  await waitForPort(child, port);
  return { url: `http://127.0.0.1:${port}`, child };
}

/**
 * A request the check refuses is handed to the gateway, which may then proxy it itself (still a 200): make sure the
 * check passes, so that the row measures nginx proxying, not the gateway.
 */
async function assertNginxProxies(frontUrl: string, gatewayUrl: string, token: string): Promise<void> {
  const response = await fetch(`${frontUrl}${REQUEST_PATH}`, { headers: { authorization: `Bearer ${token}` } });
  await response.arrayBuffer();
  const metrics = await (await fetch(`${gatewayUrl}/metrics`)).text();
  const proxiedByGateway = /^embedgate_requests_total\{[^}]*outcome="proxied"[^}]*\} [1-9]/m.test(metrics);
  if (response.status !== 200 || proxiedByGateway) {
    throw new Error(`nginx → embedgate (auth_request): the check did not let the request through (${response.status}${proxiedByGateway ? ', proxied by the gateway' : ''})`);
  }
}

/** The bare Node proxy in front of `upstreamUrl`, as in the comparison (with `nodeOptions`, e.g. for a CPU profile). */
export function startBareProxy(upstreamUrl: string, nodeOptions: string[] = []): Promise<{ url: string; child: Child }> {
  return startTsServer('bare proxy', 'bare-proxy.ts', (port) => [String(port), upstreamUrl], nodeOptions);
}

/** The bare proxy writing undici's response straight to the caller, as the gateway does. */
export function startDispatchProxy(upstreamUrl: string, nodeOptions: string[] = []): Promise<{ url: string; child: Child }> {
  return startTsServer('bare proxy (dispatch)', 'bare-proxy.ts', (port) => [String(port), upstreamUrl, 'dispatch'], nodeOptions);
}

/** The bare proxy doing the gateway's HTTP work (its relay, headers, request id and listeners), without its decisions. */
function startShapedProxy(upstreamUrl: string): Promise<{ url: string; child: Child }> {
  return startTsServer('bare proxy with the gateway\'s headers', 'bare-proxy.ts', (port) => [String(port), upstreamUrl, 'gateway-shape']);
}

export async function startWorld(dir: string, wants: { comparison: boolean }): Promise<World> {
  const children: Child[] = [];
  const issuer = await startIssuer();
  const token = await issuer.sign();
  const nginx = findNginx();
  let upstreamUrl: string;
  let upstreamChild: Child;
  if (nginx === undefined) {
    const upstream = await startTsServer('upstream', 'upstream.ts', (port) => [String(port)]);
    upstreamChild = upstream.child;
    upstreamUrl = upstream.url;
  } else {
    const port = await freePort();
    upstreamChild = await startNginxUpstream(nginx, join(dir, 'nginx-upstream'), port);
    upstreamUrl = `http://127.0.0.1:${port}`;
  }
  children.push(upstreamChild);
  const gatewaySetup = async (name: string, routes: number): Promise<GatewaySetup> =>
    ({ dir: join(dir, name), port: await freePort(), issuer: issuer.issuer, upstream: upstreamUrl, routes });
  const gateway = await startGateway('embedgate', await gatewaySetup('gateway', 1));
  children.push(gateway.child);

  const configs: HttpConfig[] = [];
  if (wants.comparison) {
    const bearer = { authorization: `Bearer ${token}` };
    const [bare, dispatch, shaped, express, nginxProxy, nginxAuth] = await Promise.all([
      startBareProxy(upstreamUrl),
      startDispatchProxy(upstreamUrl),
      startShapedProxy(upstreamUrl),
      startTsServer('express stack', 'express-stack.ts', (port) => [String(port), upstreamUrl, issuer.issuer, AUDIENCE]),
      nginx === undefined ? undefined : (async () => {
        const port = await freePort();
        return { url: `http://127.0.0.1:${port}`, child: await startNginxProxy(nginx, join(dir, 'nginx-proxy'), port, Number(new URL(upstreamUrl).port)) };
      })(),
      // nginx in front (docs/operations.md): auth_request to a gateway of its own that trusts it, then the upstream.
      nginx === undefined ? undefined : (async () => {
        const behind = await startGateway('embedgate behind nginx', { ...await gatewaySetup('gateway-behind-nginx', 1), trustedProxies: ['127.0.0.1'] });
        children.push(behind.child);
        const port = await freePort();
        const child = await startNginxAuthRequest(nginx, join(dir, 'nginx-auth'), port, Number(new URL(behind.url).port), Number(new URL(upstreamUrl).port));
        const url = `http://127.0.0.1:${port}`;
        await assertNginxProxies(url, behind.url, token);
        return { url, child, behind: behind.child };
      })(),
    ]);
    children.push(bare.child, dispatch.child, shaped.child, express.child, ...[nginxProxy, nginxAuth].flatMap((started) => (started === undefined ? [] : [started.child])));
    const cookie = await createSession(gateway.url, token);
    configs.push(
      { id: 'upstream', label: `upstream directly (${nginx === undefined ? 'Node' : 'nginx'})`, target: { url: `${upstreamUrl}${REQUEST_PATH}` }, serverGroups: [upstreamChild.pid] },
      { id: 'bare', label: 'bare Node proxy (undici, no auth)', target: { url: `${bare.url}${REQUEST_PATH}` }, serverGroups: [bare.child.pid] },
      { id: 'dispatch', label: 'bare proxy, undici dispatch', target: { url: `${dispatch.url}${REQUEST_PATH}` }, serverGroups: [dispatch.child.pid] },
      // Sent the bearer, as the gateway is, so that the incoming request is the same size.
      { id: 'shaped', label: 'bare proxy + the gateway\'s headers', target: { url: `${shaped.url}${REQUEST_PATH}`, headers: bearer }, serverGroups: [shaped.child.pid] },
      ...(nginxProxy === undefined ? [] : [{ id: 'nginx' as const, label: 'nginx reverse proxy', target: { url: `${nginxProxy.url}${REQUEST_PATH}` }, serverGroups: [nginxProxy.child.pid] }]),
      { id: 'bearer', label: 'embedgate, bearer token', target: { url: `${gateway.url}${REQUEST_PATH}`, headers: bearer }, serverGroups: [gateway.child.pid] },
      {
        id: 'lean', label: 'embedgate, bearer, user header only',
        target: { url: `${gateway.url}${REQUEST_PATH.replace('/sales/', LEAN_PREFIX)}`, headers: bearer }, serverGroups: [gateway.child.pid],
      },
      { id: 'cookie', label: 'embedgate, embed session cookie', target: { url: `${gateway.url}${REQUEST_PATH}`, headers: { cookie } }, serverGroups: [gateway.child.pid] },
      {
        id: 'handle', label: 'embedgate, worker-mode handle',
        target: { url: `${gateway.url}${REQUEST_PATH}`, headers: { 'x-embedgate-session': await createHandle(gateway.url, token) } },
        serverGroups: [gateway.child.pid],
      },
      {
        id: 'dash', label: 'embedgate, Dash callback rule (POST)',
        target: { url: `${gateway.url}/sales/_dash-update-component`, method: 'POST', headers: { ...bearer, 'content-type': 'application/json' }, body: dashCallbackBody() },
        serverGroups: [gateway.child.pid],
      },
      ...(nginxAuth === undefined ? [] : [{ id: 'nginx-auth' as const, label: 'nginx → embedgate (auth_request)', target: { url: `${nginxAuth.url}${REQUEST_PATH}`, headers: bearer }, serverGroups: [nginxAuth.child.pid, nginxAuth.behind.pid] }]),
      { id: 'express', label: 'Express + jwt-bearer + http-proxy-mw', target: { url: `${express.url}${REQUEST_PATH}`, headers: bearer }, serverGroups: [express.child.pid] },
    );
  }
  return {
    token, upstreamKind: nginx === undefined ? 'node' : 'nginx', upstreamUrl, gateway, configs, gatewaySetup,
    close: async () => {
      await Promise.all(children.map((child) => child.stop()));
      await issuer.close();
    },
  };
}
