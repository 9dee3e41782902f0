// The Engine interface over Debian's Chromium driven by playwright-core over CDP, with the existing harness's
// third-party cookie blocking (../chromium.ts: Network.setCookieControls in every tab).
//
// Playwright launches Chromium with --disable-features=…,ThirdPartyStoragePartitioning,… (its issue #32230), and with
// partitioning off, blocking third-party cookies blocks all third-party storage: localStorage, IndexedDB,
// CacheStorage and service workers all fail in a cross-site frame. Chrome itself partitions third-party storage by
// default, so by default this adapter launches Chromium with partitioning back on (the same flags as ../chromium.ts
// otherwise); `playwrightDefaults: true` uses ../chromium.ts's launchChromium() as it is.
import { chromium, type Browser, type BrowserContext, type Frame, type Page } from 'playwright-core';
import { blockThirdPartyCookies, CHROMIUM_PATH, launchChromium } from '../chromium.js';
import {
  iframeSelector, jsonExpression, parseJsonResult, pollUntil, startOutboundGuard,
  type Engine, type EngineOptions, type EngineTab,
} from './engine.js';

export interface ChromiumOptions extends EngineOptions {
  /** Launch exactly as ../chromium.ts does (third-party storage partitioning disabled, as Playwright does). */
  playwrightDefaults?: boolean;
}

/** The switches of ../chromium.ts. */
const HARNESS_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * Playwright 1.65's --disable-features list without ThirdPartyStoragePartitioning (Chromium takes the last
 * --disable-features switch, so this one replaces Playwright's), and its --enable-features plus partitioning.
 */
const PARTITIONING_ARGS = [
  '--disable-features=AvoidUnnecessaryBeforeUnloadCheckSync,DestroyProfileOnBrowserClose,HttpsUpgrades,'
    + 'HttpsFirstBalancedModeAutoEnable,LensOverlay,MediaRouter,PaintHolding,AvoidCorsURLLoaderRestartOnRedirect,'
    + 'OptimizationHints,NetworkTimeServiceQuerying,AimEnabled,PreconnectToSearch',
  '--enable-features=CDPScreenshotNewSurface,SkipListAccountsWithoutGaiaCookies,ThirdPartyStoragePartitioning',
];

async function frameOf(page: Page, iframeId: string): Promise<Frame> {
  const element = await page.$(iframeSelector(iframeId));
  if (element === null) throw new Error(`no <iframe id=${iframeId}> in the top document`);
  try {
    const frame = await element.contentFrame();
    if (frame === null) throw new Error(`<iframe id=${iframeId}> has no document`);
    return frame;
  } finally {
    await element.dispose();
  }
}

export async function launchChromiumEngine(options: ChromiumOptions): Promise<Engine> {
  const playwrightDefaults = options.playwrightDefaults ?? false;
  // The test certificate is trusted by its key (Chromium has no per-profile CA list we could give it). Unlike
  // Playwright's ignoreHTTPSErrors, this also covers service worker scripts, which otherwise fail with "An SSL
  // certificate error occurred when fetching the script".
  const args = [...HARNESS_ARGS, ...PARTITIONING_ARGS, `--ignore-certificate-errors-spki-list=${options.tls.spkiSha256}`];
  const guard = await startOutboundGuard();
  let browser: Browser;
  try {
    browser = playwrightDefaults
      ? await launchChromium()
      : await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args });
  } catch (error) {
    await guard.close();
    throw error;
  }
  const contextOptions = {
    // launchChromium() cannot be given the key above; with it, certificate errors are ignored per frame instead.
    ignoreHTTPSErrors: playwrightDefaults,
    // Loopback goes direct (naming it in bypass stops Playwright from forcing it through the proxy).
    proxy: { server: `http://${guard.host}:${guard.port}`, bypass: 'localhost,127.0.0.1,[::1]' },
  };
  const contexts = new Set<BrowserContext>();
  return {
    name: 'chromium',
    version: `Chromium ${browser.version()}`,
    settings: {
      executable: CHROMIUM_PATH,
      args: playwrightDefaults ? 'launchChromium() of ../chromium.ts' : args,
      thirdPartyCookies: 'Network.setCookieControls { enableThirdPartyCookieRestriction: true, disableThirdPartyCookieMetadata: true, disableThirdPartyCookieHeuristics: true }',
      context: contextOptions,
    },
    outbound: guard.attempts,
    async newTab(): Promise<EngineTab> {
      const context = await browser.newContext(contextOptions);
      contexts.add(context);
      try {
        const page = await context.newPage();
        await blockThirdPartyCookies(context, page);
        const evalTop = async <T>(js: string): Promise<T> => parseJsonResult<T>(await page.evaluate(jsonExpression(js)));
        const evalInFrame = async <T>(iframeId: string, js: string): Promise<T> =>
          parseJsonResult<T>(await (await frameOf(page, iframeId)).evaluate(jsonExpression(js)));
        return {
          goto: async (url) => {
            await page.goto(url, { waitUntil: 'load', timeout: 15_000 });
          },
          evalTop,
          evalInFrame,
          waitUntil: (js, timeoutMs = 10_000, iframeId) =>
            pollUntil(() => (iframeId === undefined ? evalTop(js) : evalInFrame(iframeId, js)), js, timeoutMs),
          close: async () => {
            contexts.delete(context);
            await context.close();
          },
        };
      } catch (error) {
        contexts.delete(context);
        await context.close();
        throw error;
      }
    },
    async close() {
      try {
        await Promise.allSettled([...contexts].map((context) => context.close()));
        await browser.close();
      } finally {
        await guard.close();
      }
    },
  };
}
