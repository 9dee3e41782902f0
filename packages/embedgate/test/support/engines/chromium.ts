// The Engine interface over the existing Chromium harness (../chromium.ts): Debian's Chromium driven by
// playwright-core over CDP, third-party cookies blocked in every tab with Network.setCookieControls.
import type { Browser, BrowserContext, Frame, Page } from 'playwright-core';
import { blockThirdPartyCookies, CHROMIUM_PATH, launchChromium } from '../chromium.js';
import {
  iframeSelector, jsonExpression, parseJsonResult, pollUntil, startOutboundGuard,
  type Engine, type EngineOptions, type EngineTab,
} from './engine.js';

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

export async function launchChromiumEngine(_options: EngineOptions): Promise<Engine> {
  const guard = await startOutboundGuard();
  let browser: Browser;
  try {
    browser = await launchChromium();
  } catch (error) {
    await guard.close();
    throw error;
  }
  const contextOptions = {
    // Chromium has no per-context way to trust a CA; Playwright's flag makes every frame's session (out-of-process
    // iframes included) ignore certificate errors, and service workers still register (the test checks that).
    ignoreHTTPSErrors: true,
    // Loopback goes direct (naming it in bypass stops Playwright from forcing it through the proxy).
    proxy: { server: `http://${guard.host}:${guard.port}`, bypass: 'localhost,127.0.0.1,[::1]' },
  };
  const contexts = new Set<BrowserContext>();
  return {
    name: 'chromium',
    version: `Chromium ${browser.version()}`,
    settings: {
      executable: CHROMIUM_PATH,
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
            await page.goto(url, { waitUntil: 'load' });
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
