// A throwaway Jupyter Notebook server (Debian's python3-notebook) for tests: loopback only, a temporary home, config
// and notebook directory, Jupyter's users taken from the gateway's signed assertion, stopped with its kernels.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './gateway.js';
import { freePort } from './idp.js';

/** Debian's interpreter, never a pyenv/virtualenv python3 that happens to be first on PATH. */
export const JUPYTER_PYTHON = process.env.EMBEDGATE_JUPYTER_PYTHON ?? '/usr/bin/python3';

const INSTALL_HINT = 'Jupyter Notebook was not found; install Debian\'s packages with: '
  + 'apt-get install -y --no-install-recommends python3-notebook python3-jwt python3-cryptography';

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

/** The notebook prepared for the tests: one code cell, never run. */
export const TEST_NOTEBOOK = 'embed-test.ipynb';
export const TEST_CELL = 'print(6 * 7)';

/**
 * Jupyter's login handler for a server behind embedgate, as in docs/apps/jupyter.md plus one log line: a request's user
 * is the `sub` of its X-Embedgate-Assertion, verified with the gateway's published keys; anything else is nobody, so a
 * process that reaches the port without the gateway runs no code. The log line (user and plain identity headers, never
 * the assertion) lets the test see the identity the upstream received.
 */
const LOGIN_MODULE = `"""Jupyter Notebook 6: users from embedgate's signed identity assertion (X-Embedgate-Assertion)."""
import os

import jwt
from notebook.auth.login import LoginHandler
from tornado import web

GATEWAY = os.environ["EMBEDGATE_PUBLIC_URL"]   # the gateway's public_url: the assertion's iss
APP = os.environ["EMBEDGATE_APP"]              # the app's name in the gateway config: the assertion's aud
KEYS = jwt.PyJWKClient(GATEWAY + "/_embedgate/jwks.json")


class EmbedgateLoginHandler(LoginHandler):
    @classmethod
    def get_user(cls, handler):
        if getattr(handler, "_embedgate_checked", False):
            return handler._user_id
        handler._embedgate_checked = True
        handler._user_id = None
        assertion = handler.request.headers.get("X-Embedgate-Assertion")
        if assertion:
            try:
                key = KEYS.get_signing_key_from_jwt(assertion).key
                claims = jwt.decode(assertion, key, algorithms=["ES256"], audience=APP, issuer=GATEWAY,
                                    options={"require": ["exp", "iat", "sub"]})
                handler._user_id = claims["sub"]
            except jwt.PyJWTError as error:
                handler.log.warning("embedgate assertion refused: %s", error)
        if handler._user_id is not None:
            handler.log.info("embedgate identity: %s %s user=%s forwarded-user=%s groups=%s",
                             handler.request.method, handler.request.path, handler._user_id,
                             handler.request.headers.get("X-Forwarded-User"),
                             handler.request.headers.get("X-Forwarded-Groups"))
        return handler._user_id

    @classmethod
    def get_login_available(cls, settings):
        return False

    @classmethod
    def validate_security(cls, app, ssl_options=None):
        app.log.info("users come from embedgate's assertion (%s, app %s)", GATEWAY, APP)

    def get(self):
        raise web.HTTPError(403, "sign in through embedgate")

    post = get
`;

/**
 * Notebook 6 opens notebooks and files from its file list in a new tab (`Jupyter._target = '_blank'`). A new tab at the
 * gateway has no embed session (the cookie lives in the host site's partition), so links to Jupyter itself open in the
 * frame instead; links to other sites keep their new tab. The same file is in docs/apps/jupyter.md.
 */
const CUSTOM_JS = `// embedgate: open Jupyter's own pages in this frame, not in a new tab (a new tab has no embed session).
define(['base/js/namespace'], function (Jupyter) {
  Jupyter._target = '_self';
  document.addEventListener('click', function (event) {
    var link = event.target instanceof Element ? event.target.closest('a[target="_blank"]') : null;
    if (link && link.origin === location.origin) link.target = '_self';
  }, true);
});
`;

function notebookJson(): string {
  return JSON.stringify({
    cells: [{ cell_type: 'code', execution_count: null, id: 'six-times-seven', metadata: {}, outputs: [], source: [TEST_CELL] }],
    metadata: {
      kernelspec: { display_name: 'Python 3', language: 'python', name: 'python3' },
      language_info: { name: 'python' },
    },
    nbformat: 4,
    nbformat_minor: 5,
  }, null, 1);
}

export interface JupyterOptions {
  /** The gateway's public_url: Jupyter's allow_origin and the issuer of the assertions it accepts. */
  gateway: string;
  /** The gateway app's name: the assertions' audience. */
  app: string;
  /** Jupyter's base_url, equal to the app's prefix (the gateway forwards the prefix). */
  prefix: string;
  /** Leave Jupyter's own XSRF check on (to see what it breaks); by default it is off and the gateway's rule applies. */
  checkXsrf?: boolean;
}

export interface IdentityLine {
  method: string;
  path: string;
  user: string;
  forwardedUser: string;
  groups: string;
}

export interface RunningJupyter {
  /** http://127.0.0.1:<port>: the gateway app's upstream. */
  url: string;
  prefix: string;
  /** Jupyter's log lines so far (its own, no tokens: it has none). */
  logs: string[];
  /** What the login handler identified, one entry per request that asked who the user is. */
  identities(): IdentityLine[];
  /** Request lines Jupyter logged (`200 GET /jupyter/api/kernels`), at debug level for successes. */
  requests(): string[];
  /** Kernel connection files in Jupyter's runtime directory: one per running kernel. */
  kernelFiles(): string[];
  /** The test notebook as saved on disk. */
  readNotebook(): string;
  stop(): Promise<void>;
}

export async function startJupyter(options: JupyterOptions): Promise<RunningJupyter> {
  if (!existsSync(JUPYTER_PYTHON)) throw new Error(INSTALL_HINT);
  const root = mkdtempSync(join(tmpdir(), 'embedgate-jupyter-'));
  const dirs = { home: 'home', config: 'config', custom: 'config/custom', data: 'data', runtime: 'runtime', ipython: 'ipython', python: 'python', notebooks: 'notebooks' };
  const at = Object.fromEntries(Object.entries(dirs).map(([key, name]) => [key, join(root, name)])) as Record<keyof typeof dirs, string>;
  for (const dir of Object.values(at)) mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(at.notebooks, TEST_NOTEBOOK), notebookJson());
  writeFileSync(join(at.python, 'embedgate_login.py'), LOGIN_MODULE);
  writeFileSync(join(at.custom, 'custom.js'), CUSTOM_JS);
  const port = await freePort();
  const config = {
    NotebookApp: {
      ip: '127.0.0.1',
      port,
      port_retries: 0,
      open_browser: false,
      base_url: options.prefix,
      notebook_dir: at.notebooks,
      allow_root: true,
      log_level: 'DEBUG',
      // Jupyter's token and password are off: embedgate authenticates, the login handler names the user.
      token: '',
      password: '',
      login_handler_class: 'embedgate_login.EmbedgateLoginHandler',
      // The browser's Origin is the gateway's, the Host Jupyter sees is its own: allow exactly the gateway.
      allow_origin: options.gateway,
      // The _xsrf cookie cannot exist in a cross-site frame; the gateway's Origin rule protects the session instead.
      disable_check_xsrf: options.checkXsrf !== true,
      terminals_enabled: false,
    },
  };
  writeFileSync(join(at.config, 'jupyter_notebook_config.json'), JSON.stringify(config, null, 2));

  const env: NodeJS.ProcessEnv = {
    PATH: '/usr/bin:/bin',
    LANG: 'C.UTF-8',
    HOME: at.home,
    JUPYTER_CONFIG_DIR: at.config,
    JUPYTER_DATA_DIR: at.data,
    JUPYTER_RUNTIME_DIR: at.runtime,
    IPYTHONDIR: at.ipython,
    PYTHONPATH: at.python,
    PYDEVD_DISABLE_FILE_VALIDATION: '1',
    EMBEDGATE_PUBLIC_URL: options.gateway,
    EMBEDGATE_APP: options.app,
  };
  const child = spawn(JUPYTER_PYTHON, ['-m', 'notebook'], { cwd: at.notebooks, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  const collect = (chunk: Buffer): void => {
    logs.push(...chunk.toString('utf8').split('\n').filter((line) => line.trim() !== ''));
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = once(child, 'exit');
  let running = true;
  void exited.then(() => { running = false; });
  child.on('error', () => { running = false; });

  const url = `http://127.0.0.1:${port}`;
  const removeAll = (): void => rmSync(root, { recursive: true, force: true });
  try {
    // Jupyter answers /api (its version) without a user once it listens.
    await eventually(async () => {
      if (!running) {
        const hint = logs.some((line) => /No module named/.test(line)) ? `\n${INSTALL_HINT}` : '';
        throw new Error(`Jupyter exited before it was ready:\n${logs.slice(-30).join('\n')}${hint}`);
      }
      try {
        return (await fetch(`${url}${options.prefix}api`)).status === 200;
      } catch {
        return false;
      }
    }, READY_TIMEOUT_MS);
  } catch (error) {
    await stopProcess(child);
    removeAll();
    throw error;
  }

  const kernelFiles = (): string[] => (existsSync(at.runtime) ? readdirSync(at.runtime).filter((name) => /^kernel-.*\.json$/.test(name)) : []);
  return {
    url,
    prefix: options.prefix,
    logs,
    identities: () => logs.flatMap((line) => {
      const match = /embedgate identity: (\S+) (\S+) user=(\S*) forwarded-user=(\S*) groups=(\S*)/.exec(line);
      return match === null ? [] : [{ method: match[1] as string, path: match[2] as string, user: match[3] as string, forwardedUser: match[4] as string, groups: match[5] as string }];
    }),
    requests: () => logs.flatMap((line) => {
      const match = /NotebookApp\] (\d{3} [A-Z]+ \S+) \(/.exec(line);
      return match === null ? [] : [match[1] as string];
    }),
    kernelFiles,
    readNotebook: () => readFileSync(join(at.notebooks, TEST_NOTEBOOK), 'utf8'),
    stop: async () => {
      await stopProcess(child);
      const left = kernelFiles();
      removeAll();
      if (left.length > 0) throw new Error(`Jupyter stopped but left kernels behind: ${left.join(', ')}`);
    },
  };
}

/** SIGTERM: Jupyter stops its loop, shuts its kernels down and removes their connection files; SIGKILL if it hangs. */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS); });
  const result = await Promise.race([exited, timedOut]);
  clearTimeout(timer);
  if (result === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}
