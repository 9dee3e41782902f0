// nginx, when it is on PATH: the upstream serving the JSON payload as a file, and a plain reverse proxy in front of it.
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { startChild, waitForPort, type Child } from '../children.js';
import { PAYLOAD } from './payload.js';

/** The nginx binary on PATH, or undefined. */
export function findNginx(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'nginx');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

/**
 * One worker process (like each Node server here), no logs, temp files inside `dir`. The worker runs as the
 * current user (nginx ignores `user` when not started as root), so it can read the bench's private temp dir.
 */
function config(dir: string, server: string): string {
  return `user ${userInfo().username};
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 65s;
${server}
}
`;
}

async function start(binary: string, dir: string, name: string, port: number, server: string): Promise<Child> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'nginx.conf'), config(dir, server));
  const child = startChild(name, binary, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')]);
  await waitForPort(child, port);
  return child;
}

/** Serves PAYLOAD for every GET (as a file) and for the Dash callback POST. */
export function startNginxUpstream(binary: string, dir: string, port: number): Promise<Child> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'payload.json'), PAYLOAD);
  // An nginx single-quoted string: the JSON as is, with \ and ' escaped (the payload has no $).
  const json = PAYLOAD.trimEnd().replace(/[\\']/g, '\\$&');
  return start(binary, dir, 'nginx upstream', port, `  server {
    listen 127.0.0.1:${port};
    default_type application/json;
    location ~ /_dash-update-component$ { return 200 '${json}'; }
    location / { root ${dir}; try_files /payload.json =404; }
  }`);
}

/** A plain reverse proxy with a keep-alive upstream pool. */
export function startNginxProxy(binary: string, dir: string, port: number, upstreamPort: number): Promise<Child> {
  return start(binary, dir, 'nginx proxy', port, `  upstream app { server 127.0.0.1:${upstreamPort}; keepalive 256; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }`);
}

/**
 * nginx in front of the gateway as docs/operations.md's "nginx in front" recipe sets up an app without callback rules:
 * `auth_request` to the gateway's /_embedgate/auth for every request, the identity headers of the check passed to the
 * upstream, denials answered by the gateway. The same lines for /sales/ (the bench's path), without TLS (like every
 * other row) and without the port-80 redirect.
 */
export function startNginxAuthRequest(binary: string, dir: string, port: number, gatewayPort: number, upstreamPort: number): Promise<Child> {
  const common = `proxy_set_header Host              $host;
      proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host  $host;
      proxy_set_header X-Request-Id      $request_id;`;
  return start(binary, dir, 'nginx auth_request', port, `  upstream embedgate { server 127.0.0.1:${gatewayPort}; keepalive 64; }
  upstream app { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  server {
    listen 127.0.0.1:${port};
    proxy_http_version 1.1;
    location /sales/ {
      auth_request /_embedgate_auth;
      auth_request_set $embedgate_user      $upstream_http_x_forwarded_user;
      auth_request_set $embedgate_email     $upstream_http_x_forwarded_email;
      auth_request_set $embedgate_groups    $upstream_http_x_forwarded_groups;
      auth_request_set $embedgate_assertion $upstream_http_x_embedgate_assertion;
      error_page 401 403 500 = @embedgate;
      proxy_pass http://app;
      proxy_set_header X-Forwarded-User      $embedgate_user;
      proxy_set_header X-Forwarded-Email     $embedgate_email;
      proxy_set_header X-Forwarded-Groups    $embedgate_groups;
      proxy_set_header X-Embedgate-Assertion $embedgate_assertion;
      proxy_set_header Authorization         "";
      ${common}
      proxy_set_header Upgrade           $http_upgrade;
      proxy_set_header Connection        $connection_upgrade;
    }
    location = /_embedgate_auth {
      internal;
      proxy_pass http://embedgate/_embedgate/auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length     "";
      proxy_method $request_method;
      proxy_set_header X-Forwarded-Method $request_method;
      proxy_set_header X-Forwarded-Uri    $request_uri;
      proxy_set_header X-Forwarded-For    $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto  $scheme;
      proxy_set_header X-Forwarded-Host   $host;
      proxy_set_header X-Request-Id       $request_id;
      proxy_set_header Connection         "";
    }
    location @embedgate {
      proxy_pass http://embedgate;
      ${common}
      proxy_set_header Connection "";
    }
  }`);
}
