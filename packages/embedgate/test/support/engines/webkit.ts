// The Engine interface over WebKitGTK: Debian's MiniBrowser in automation mode, driven by selenium-webdriver through
// Debian's WebKitWebDriver (never a downloaded browser or driver: selenium is only pointed at a driver we started, so
// Selenium Manager never runs), on a private Xvfb display. Each tab is its own WebKitWebDriver and session: automation
// sessions are ephemeral, so every tab starts with an empty cookie jar, storage and no service workers.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Builder, By, type WebDriver } from 'selenium-webdriver';
import {
  freePort, iframeSelector, jsonExpression, parseJsonResult, pollUntil, Serial, startOutboundGuard,
  type Engine, type EngineOptions, type EngineTab,
} from './engine.js';

export const WEBKIT_DRIVER_PATH = process.env.EMBEDGATE_WEBKIT_DRIVER ?? '/usr/bin/WebKitWebDriver';
export const XVFB_PATH = process.env.EMBEDGATE_XVFB ?? '/usr/bin/Xvfb';

/** Debian's MiniBrowser: /usr/lib/<triplet>/webkit2gtk-<api>/MiniBrowser (shipped with libwebkit2gtk). */
export function findMiniBrowser(): string | undefined {
  if (process.env.EMBEDGATE_MINIBROWSER !== undefined) return process.env.EMBEDGATE_MINIBROWSER;
  const found: string[] = [];
  for (const lib of ['/usr/lib', ...safeList('/usr/lib').filter((name) => name.includes('-linux-')).map((name) => join('/usr/lib', name))]) {
    for (const name of safeList(lib).filter((entry) => entry.startsWith('webkit2gtk-')).sort().reverse()) {
      const candidate = join(lib, name, 'MiniBrowser');
      if (existsSync(candidate)) found.push(candidate);
    }
  }
  return found[0];
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Child processes in their own process groups, killed with the group on close or, at the latest, on exit. */
const running = new Set<ChildProcess>();
function killGroup(child: ChildProcess): void {
  running.delete(child);
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
process.once('exit', () => [...running].forEach(killGroup));

function spawnGroup(command: string, args: string[], env: NodeJS.ProcessEnv, extraFds = 0): ChildProcess {
  const stdio: Array<'ignore' | 'pipe'> = ['ignore', 'ignore', 'pipe', ...Array<'pipe'>(extraFds).fill('pipe')];
  const child = spawn(command, args, { env, stdio, detached: true });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Starts Xvfb on the first free display (it picks the number and writes it to fd 3); no TCP listener. */
async function startXvfb(): Promise<{ display: string; process: ChildProcess }> {
  const xvfb = spawnGroup(XVFB_PATH, ['-displayfd', '3', '-nolisten', 'tcp', '-screen', '0', '1280x1024x24'], process.env, 1);
  let stderr = '';
  xvfb.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4096)));
  try {
    const display = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`Xvfb gave no display number in 10 s: ${stderr}`)), 10_000);
      xvfb.stdio[3]?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) {
          clearTimeout(timer);
          resolve(`:${out.trim()}`);
        }
      });
      xvfb.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`Xvfb exited (${code}): ${stderr}`));
      });
    });
    return { display, process: xvfb };
  } catch (error) {
    killGroup(xvfb);
    throw error;
  }
}

/** Starts WebKitWebDriver on a free loopback port and waits until it answers /status. */
async function startDriver(display: string): Promise<{ url: string; process: ChildProcess }> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, DISPLAY: display, WAYLAND_DISPLAY: '', GDK_BACKEND: 'x11' };
    for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy', 'no_proxy', 'NO_PROXY']) delete env[name];
    const driver = spawnGroup(WEBKIT_DRIVER_PATH, [`--port=${port}`, '--host=local'], env);
    let stderr = '';
    driver.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4096)));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    while (driver.exitCode === null && Date.now() < deadline) {
      try {
        if ((await fetch(`${url}/status`)).ok) return { url, process: driver };
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    killGroup(driver);
    if (attempt >= 2) throw new Error(`WebKitWebDriver did not start on ${url}: ${stderr}`);
  }
}

export async function launchWebKitEngine(_options: EngineOptions): Promise<Engine> {
  const miniBrowser = findMiniBrowser();
  if (miniBrowser === undefined) throw new Error('no MiniBrowser under /usr/lib/*/webkit2gtk-*/ (Debian package libwebkit2gtk-4.1-0)');
  const guard = await startOutboundGuard();
  let xvfb: { display: string; process: ChildProcess };
  try {
    xvfb = await startXvfb();
  } catch (error) {
    await guard.close();
    throw error;
  }
  const capabilities = {
    browserName: 'MiniBrowser',
    // The test certificate is not in the system store: accept it as WebDriver allows.
    acceptInsecureCerts: true,
    pageLoadStrategy: 'normal',
    // no-third-party is MiniBrowser's default cookie policy too (the same facts were seen without the flag); said
    // here so that a changed default cannot silently unblock them. The automation session is ephemeral.
    'webkitgtk:browserOptions': { binary: miniBrowser, args: [
      '--automation', '--cookies-policy=no-third-party',
      `--proxy=http://${guard.host}:${guard.port}`, '--ignore-host=localhost', '--ignore-host=127.0.0.1',
    ] },
  };
  const tabs = new Set<EngineTab>();

  async function newTab(): Promise<EngineTab> {
    const driverProcess = await startDriver(xvfb.display);
    let driver: WebDriver;
    try {
      driver = await new Builder().disableEnvironmentOverrides().usingServer(driverProcess.url).withCapabilities(capabilities).build();
      await driver.manage().setTimeouts({ script: 30_000, pageLoad: 15_000 });
    } catch (error) {
      killGroup(driverProcess.process);
      throw error;
    }
    const serial = new Serial();
    const run = async <T>(js: string): Promise<T> => {
      const script = `const done = arguments[arguments.length - 1];
        ${jsonExpression(js)}.then(done, (e) => done(JSON.stringify({ error: String(e && e.stack || e) })));`;
      const text = await driver.executeAsyncScript<string>(script);
      const error = typeof text === 'string' ? (JSON.parse(text) as { error?: string }).error : undefined;
      if (error !== undefined) throw new Error(error);
      return parseJsonResult<T>(text);
    };
    const evalTop = <T>(js: string): Promise<T> => serial.run(async () => {
      await driver.switchTo().defaultContent();
      return run<T>(js);
    });
    const evalInFrame = <T>(iframeId: string, js: string): Promise<T> => serial.run(async () => {
      await driver.switchTo().defaultContent();
      const elements = await driver.findElements(By.css(iframeSelector(iframeId)));
      if (elements[0] === undefined) throw new Error(`no <iframe id=${iframeId}> in the top document`);
      await driver.switchTo().frame(elements[0]);
      try {
        return await run<T>(js);
      } finally {
        await driver.switchTo().defaultContent();
      }
    });
    let closed = false;
    const tab: EngineTab = {
      goto: (url) => serial.run(async () => {
        await driver.switchTo().defaultContent();
        await driver.get(url);
      }),
      evalTop,
      evalInFrame,
      waitUntil: (js, timeoutMs = 10_000, iframeId) =>
        pollUntil(() => (iframeId === undefined ? evalTop(js) : evalInFrame(iframeId, js)), js, timeoutMs),
      close: async () => {
        if (closed) return;
        closed = true;
        tabs.delete(tab);
        try {
          await Promise.race([driver.quit(), new Promise((resolve) => setTimeout(resolve, 5_000))]);
        } catch {
          // the session is gone anyway
        } finally {
          killGroup(driverProcess.process);
          await exited(driverProcess.process);
        }
      },
    };
    tabs.add(tab);
    return tab;
  }

  // The version the session reports (WebKitGTK's), read from a first session that is closed again.
  let version: string;
  try {
    const probe = await startDriver(xvfb.display);
    try {
      const driver = await new Builder().disableEnvironmentOverrides().usingServer(probe.url).withCapabilities(capabilities).build();
      const reported = await driver.getCapabilities();
      version = `WebKitGTK ${String(reported.get('browserVersion'))} (${String(reported.get('browserName'))})`;
      await driver.quit();
    } finally {
      killGroup(probe.process);
    }
  } catch (error) {
    killGroup(xvfb.process);
    await guard.close();
    throw error;
  }

  return {
    name: 'webkit',
    version,
    settings: { driver: WEBKIT_DRIVER_PATH, display: `Xvfb ${xvfb.display}`, capabilities },
    outbound: guard.attempts,
    newTab,
    async close() {
      try {
        await Promise.allSettled([...tabs].map((tab) => tab.close()));
      } finally {
        killGroup(xvfb.process);
        await exited(xvfb.process);
        await guard.close();
      }
    },
  };
}
