// The system programs the test suite needs, in one list: `npm test` runs this first. Whatever is missing is installed
// with apt-get when it can be (as root on Debian, one `apt-get update` for all); otherwise it stops at once, naming the
// exact packages to install.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface Prerequisite {
  /** What the tests use it for, shown when it is missing. */
  purpose: string;
  /** The Debian packages that provide it. */
  packages: string[];
  present(): boolean;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && isExecutable(join(dir, command)));
}

/** Debian keeps the server programs under /usr/lib/postgresql/<version>/bin, off PATH. */
function postgresInstalled(): boolean {
  if (onPath('initdb')) return true;
  try {
    return readdirSync('/usr/lib/postgresql').some((version) => isExecutable(join('/usr/lib/postgresql', version, 'bin', 'initdb')));
  } catch {
    return false;
  }
}

/** Debian ships MiniBrowser (what WebKitWebDriver starts) off PATH, in /usr/lib/<triplet>/webkit2gtk-<api>/. */
function miniBrowserInstalled(): boolean {
  if (process.env.EMBEDGATE_MINIBROWSER !== undefined) return isExecutable(process.env.EMBEDGATE_MINIBROWSER);
  const list = (dir: string): string[] => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  };
  const libs = ['/usr/lib', ...list('/usr/lib').filter((name) => name.includes('-linux-')).map((name) => join('/usr/lib', name))];
  return libs.some((lib) => list(lib).some((name) => name.startsWith('webkit2gtk-') && isExecutable(join(lib, name, 'MiniBrowser'))));
}

function pythonImports(python: string, modules: string[]): boolean {
  return spawnSync(python, ['-c', `import ${modules.join(', ')}`], { stdio: 'ignore' }).status === 0;
}

/** The same paths and overrides the tests' support modules use. */
export const PREREQUISITES: Prerequisite[] = [
  {
    purpose: 'the x5c attack test makes a self-signed certificate',
    packages: ['openssl'],
    present: () => onPath('openssl'),
  },
  {
    purpose: 'the IdP store tests start a throwaway PostgreSQL server (initdb, postgres)',
    packages: ['postgresql'],
    present: postgresInstalled,
  },
  {
    purpose: 'the browser tests drive Debian\'s Chromium with playwright-core',
    packages: ['chromium'],
    present: () => isExecutable(process.env.EMBEDGATE_CHROMIUM ?? '/usr/bin/chromium'),
  },
  {
    purpose: 'the browser engine tests drive Debian\'s Firefox ESR with puppeteer-core over WebDriver BiDi',
    packages: ['firefox-esr'],
    present: () => isExecutable(process.env.EMBEDGATE_FIREFOX ?? '/usr/bin/firefox-esr'),
  },
  {
    purpose: 'the browser engine tests drive WebKitGTK\'s MiniBrowser through WebKitWebDriver with selenium-webdriver',
    packages: ['webkit2gtk-driver'],
    present: () => isExecutable(process.env.EMBEDGATE_WEBKIT_DRIVER ?? '/usr/bin/WebKitWebDriver') && miniBrowserInstalled(),
  },
  {
    purpose: 'the browser engine tests run WebKit on a virtual X display (Xvfb)',
    packages: ['xvfb'],
    present: () => isExecutable(process.env.EMBEDGATE_XVFB ?? '/usr/bin/Xvfb'),
  },
  {
    purpose: 'the nginx-front test runs the docs\' nginx recipe (TLS, auth_request, proxy mode) with a real nginx',
    packages: ['nginx'],
    present: () => isExecutable(process.env.EMBEDGATE_NGINX ?? '/usr/sbin/nginx'),
  },
  {
    purpose: 'the session tests run gateways sharing a real Redis',
    packages: ['redis-server'],
    present: () => isExecutable(process.env.EMBEDGATE_REDIS_SERVER ?? '/usr/bin/redis-server'),
  },
  {
    purpose: 'the Jupyter test runs a real Notebook server that verifies the gateway\'s signed identity header',
    packages: ['python3-notebook', 'python3-jwt', 'python3-cryptography'],
    present: () => pythonImports(process.env.EMBEDGATE_JUPYTER_PYTHON ?? '/usr/bin/python3', ['notebook', 'jwt', 'cryptography']),
  },
];

export interface Environment {
  /** Root on a machine with apt-get, and installing was not switched off. */
  canInstall: boolean;
  /** Installs the packages; true when apt-get succeeded. */
  install(packages: string[]): boolean;
  print(line: string): void;
}

/** Exit code: 0 when everything is there (installed if need be), 1 with one message naming what to install. */
export function ensurePrerequisites(prerequisites: Prerequisite[], env: Environment): number {
  let missing = prerequisites.filter((p) => !p.present());
  if (missing.length === 0) return 0;
  const packages = (list: Prerequisite[]) => [...new Set(list.flatMap((p) => p.packages))];
  if (env.canInstall) {
    env.print(`npm test: installing the system packages the tests need: ${packages(missing).join(' ')}`);
    if (env.install(packages(missing))) missing = missing.filter((p) => !p.present());
  }
  if (missing.length === 0) return 0;
  env.print([
    'npm test: the tests need system packages that are not installed:',
    ...missing.map((p) => `  - ${p.packages.join(', ')}: ${p.purpose}`),
    'Install them, then run npm test again:',
    `  sudo apt-get install -y --no-install-recommends ${packages(missing).join(' ')}`,
  ].join('\n'));
  return 1;
}

function aptInstall(packages: string[]): boolean {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (spawnSync('apt-get', ['update'], { stdio: 'inherit', env }).status !== 0) return false;
  return spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { stdio: 'inherit', env }).status === 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = ensurePrerequisites(PREREQUISITES, {
    canInstall: process.getuid?.() === 0 && onPath('apt-get') && process.env.EMBEDGATE_TEST_INSTALL !== '0',
    install: aptInstall,
    print: (line) => process.stderr.write(`${line}\n`),
  });
}
