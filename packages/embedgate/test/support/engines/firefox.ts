// The Engine interface over Debian's firefox-esr, driven by puppeteer-core over WebDriver BiDi (never a downloaded
// browser): a fresh throwaway profile per launch with third-party cookies blocked by pref, background services off
// and every non-loopback request sent to a local guard that refuses it.
import puppeteer, { type Browser, type BrowserContext, type Frame, type Page } from 'puppeteer-core';
import {
  iframeSelector, pageTab, startOutboundGuard,
  type Engine, type EngineOptions, type EngineTab,
} from './engine.js';

export const FIREFOX_PATH = process.env.EMBEDGATE_FIREFOX ?? '/usr/bin/firefox-esr';

/**
 * Firefox's third-party cookie settings, as observed with Firefox 153 ESR (browser-engines.test.ts asserts them).
 * network.cookie.cookieBehavior is an nsICookieService behaviour; the partitioned modes also partition third-party
 * storage and service workers by the top-level site, while 1 blocks them in third-party frames.
 */
export const FIREFOX_COOKIE_MODES = {
  /** 1, BEHAVIOR_REJECT_FOREIGN ("all cross-site cookies" in the settings): Partitioned cookies are rejected too. */
  rejectAll: { cookieBehavior: 1 },
  /**
   * 5 with optInPartitioning, Firefox's "third-party cookie deprecation" mode (content-blocking feature "3pcd"):
   * third-party cookies are rejected unless they are Partitioned (CHIPS). optInPartitioning does nothing with 1.
   */
  partitionedOnly: { cookieBehavior: 5, prefs: { 'network.cookie.cookieBehavior.optInPartitioning': true } },
  /**
   * 5, BEHAVIOR_REJECT_TRACKER_AND_PARTITION_FOREIGN ("Total Cookie Protection"): the default, for both the Standard
   * and the Strict protection level. Third-party cookies are not blocked: each top-level site gets its own jar.
   */
  firefoxDefault: { cookieBehavior: 5 },
} as const;

export interface FirefoxOptions extends EngineOptions {
  /** network.cookie.cookieBehavior; default 1 (reject every third-party cookie). See FIREFOX_COOKIE_MODES. */
  cookieBehavior?: number;
  /** More prefs, applied last (e.g. network.cookie.cookieBehavior.optInPartitioning). */
  prefs?: Record<string, string | number | boolean>;
}

/** Prefs that keep a test profile off the network, on top of puppeteer's and the remote agent's own. */
const QUIET_PREFS: Record<string, string | number | boolean> = {
  'app.update.auto': false,
  'app.shield.optoutstudies.enabled': false,
  'browser.ping-centre.telemetry': false,
  'browser.region.update.enabled': false,
  'browser.safebrowsing.update.enabled': false,
  'browser.newtabpage.activity-stream.feeds.telemetry': false,
  'browser.newtabpage.activity-stream.telemetry': false,
  'extensions.blocklist.enabled': false,
  'messaging-system.rsexperimentloader.enabled': false,
  'network.dns.disablePrefetch': true,
  'network.http.speculative-parallel-limit': 0,
  'network.predictor.enabled': false,
  'network.prefetch-next': false,
  'network.trr.mode': 5,
  'security.OCSP.enabled': 0,
  'security.remote_settings.crlite_filters.enabled': false,
  'services.settings.server': 'data:,#remote-settings-dummy/v1',
  'toolkit.telemetry.archive.enabled': false,
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.unified': false,
};

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

export async function launchFirefoxEngine(options: FirefoxOptions): Promise<Engine> {
  const guard = await startOutboundGuard();
  const prefs: Record<string, string | number | boolean> = {
    ...QUIET_PREFS,
    // Every request that is not to loopback goes to the guard (which refuses it and notes it).
    'network.proxy.type': 1,
    'network.proxy.http': guard.host,
    'network.proxy.http_port': guard.port,
    'network.proxy.ssl': guard.host,
    'network.proxy.ssl_port': guard.port,
    'network.proxy.no_proxies_on': 'localhost, 127.0.0.1',
    'network.proxy.allow_hijacking_localhost': false,
    // Our cookie pref, not a content-blocking category's (puppeteer's "standard" category would set 0).
    'browser.contentblocking.category': 'custom',
    'network.cookie.cookieBehavior': options.cookieBehavior ?? FIREFOX_COOKIE_MODES.rejectAll.cookieBehavior,
    'network.cookie.cookieBehavior.pbmode': options.cookieBehavior ?? FIREFOX_COOKIE_MODES.rejectAll.cookieBehavior,
    ...options.prefs,
  };
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: FIREFOX_PATH,
      headless: true,
      protocol: 'webDriverBiDi',
      // The test certificate is not in Firefox's store (no certutil here to add it): accept it as WebDriver allows.
      acceptInsecureCerts: true,
      extraPrefsFirefox: prefs,
      // No proxy settings from the environment.
      env: {
        ...process.env, HTTP_PROXY: '', HTTPS_PROXY: '', http_proxy: '', https_proxy: '', ALL_PROXY: '', all_proxy: '',
        // Mozilla's own test switch: no connection to anything but loopback; it also lets a release build (ESR) take
        // services.settings.server, which it otherwise ignores (Remote Settings would call
        // firefox.settings.services.mozilla.com).
        MOZ_DISABLE_NONLOCAL_CONNECTIONS: '1',
      },
      timeout: 30_000,
    });
  } catch (error) {
    await guard.close();
    throw error;
  }
  const version = (await browser.version()).replace(/^firefox\//i, 'Firefox ');
  const contexts = new Set<BrowserContext>();
  return {
    name: 'firefox',
    version,
    settings: { executable: FIREFOX_PATH, protocol: 'webDriverBiDi', acceptInsecureCerts: true, prefs },
    outbound: guard.attempts,
    async newTab(): Promise<EngineTab> {
      // A BiDi user context: its own cookie jar, storage and service workers.
      const context = await browser.createBrowserContext();
      contexts.add(context);
      try {
        const page = await context.newPage();
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
