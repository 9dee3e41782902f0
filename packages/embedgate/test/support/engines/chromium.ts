// The Engine interface over Debian's Chromium driven by playwright-core over CDP, with the existing harness's
// third-party cookie blocking (../chromium.ts: Network.setCookieControls in every tab).
//
// Playwright launches Chromium with --disable-features=…,ThirdPartyStoragePartitioning,… (its issue #32230), and with
// partitioning off, blocking third-party cookies blocks all third-party storage: localStorage, IndexedDB,
// CacheStorage and service workers all fail in a cross-site frame. Chrome itself partitions third-party storage by
// default, so by default this adapter launches Chromium with partitioning back on (the same flags as ../chromium.ts
// otherwise); `playwrightDefaults: true` launches it with Playwright's own feature switches (partitioning off).
import { chromium, type Browser, type BrowserContext, type Frame, type Page } from 'playwright-core';
import { blockThirdPartyCookies, CHROME_STORAGE_ARGS, CHROMIUM_ARGS, CHROMIUM_PATH } from '../chromium.js';
import {
  iframeSelector, pageTab, startOutboundGuard,
  type Engine, type EngineOptions, type EngineTab,
} from './engine.js';

export interface ChromiumOptions extends EngineOptions {
  /** Launch exactly as ../chromium.ts does (third-party storage partitioning disabled, as Playwright does). */
  playwrightDefaults?: boolean;
}

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
  const args = [...CHROMIUM_ARGS, ...(playwrightDefaults ? [] : CHROME_STORAGE_ARGS), `--ignore-certificate-errors-spki-list=${options.tls.spkiSha256}`];
  const guard = await startOutboundGuard();
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args });
  } catch (error) {
    await guard.close();
    throw error;
  }
  const contextOptions = {
    ignoreHTTPSErrors: false,
    // Loopback goes direct (naming it in bypass stops Playwright from forcing it through the proxy).
    proxy: { server: `http://${guard.host}:${guard.port}`, bypass: 'localhost,127.0.0.1,[::1]' },
  };
  const contexts = new Set<BrowserContext>();
  return {
    name: 'chromium',
    version: `Chromium ${browser.version()}`,
    settings: {
      executable: CHROMIUM_PATH,
      args,
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
        return pageTab(page, (iframeId) => frameOf(page, iframeId), async () => {
          contexts.delete(context);
          await context.close();
        });
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
