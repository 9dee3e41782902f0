// Real-browser tests: Debian's Chromium driven by playwright-core (never a downloaded browser), with third-party
// cookies blocked in every page through CDP, and every console line and page error of every frame captured.
import { chromium, type Browser, type BrowserContext, type Page, type Request } from 'playwright-core';

export const CHROMIUM_PATH = process.env.EMBEDGATE_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * Third-party storage partitioning back on, as Chrome ships it. Playwright launches Chromium with
 * --disable-features=…,ThirdPartyStoragePartitioning (its issue #32230), and without partitioning, blocked third-party
 * cookies block all storage in a cross-site frame (sessionStorage, service workers). Chromium takes the last
 * --disable-features switch, so this list (Playwright 1.65's, less that feature) replaces Playwright's.
 */
export const CHROME_STORAGE_ARGS = [
  '--disable-features=AutofillServerCommunication,AvoidUnnecessaryBeforeUnloadCheckSync,DestroyProfileOnBrowserClose,HttpsUpgrades,'
    + 'HttpsFirstBalancedModeAutoEnable,LensOverlay,MediaRouter,PaintHolding,AvoidCorsURLLoaderRestartOnRedirect,'
    + 'OptimizationHints,NetworkTimeServiceQuerying,AimEnabled,PreconnectToSearch',
  '--enable-features=CDPScreenshotNewSurface,SkipListAccountsWithoutGaiaCookies,ThirdPartyStoragePartitioning',
];

/** Chromium as Chrome behaves for cross-site frames (partitioned storage); `extraArgs` for one suite's needs. */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS, ...CHROME_STORAGE_ARGS, ...extraArgs] });
}

/** Turns Chromium's third-party-cookie blocking on for one page (what users of privacy modes and new Chrome get). */
export async function blockThirdPartyCookies(context: BrowserContext, page: Page): Promise<void> {
  const cdp = await context.newCDPSession(page);
  // playwright-core's protocol types only know the first field; Chromium takes all three.
  const controls = {
    enableThirdPartyCookieRestriction: true,
    disableThirdPartyCookieMetadata: true,
    disableThirdPartyCookieHeuristics: true,
  };
  await cdp.send('Network.setCookieControls', controls);
}

export interface BrowserTab {
  context: BrowserContext;
  page: Page;
  /** Every console message of the page and its frames, as "type: text" (the frames' origins are in `consoleAt`). */
  console: string[];
  /** Console messages with the URL of the frame that logged them. */
  consoleAt: Array<{ type: string; text: string; url: string }>;
  /** Uncaught exceptions of the page and its frames. */
  errors: string[];
  close(): Promise<void>;
}

/**
 * A fresh context (its own cookie jar and partitions) with one page, third-party cookies blocked before anything is
 * loaded; popups get the same as soon as they open (their first request may come before that).
 * (Chromium 156 here blocked them even without the CDP call — blockedReasons "UserPreferences" — presumably because
 * Playwright's contexts are off-the-record profiles; the call makes it explicit and independent of defaults.)
 */
export async function openTab(browser: Browser): Promise<BrowserTab> {
  const context = await browser.newContext();
  const consoleLines: string[] = [];
  const consoleAt: BrowserTab['consoleAt'] = [];
  const errors: string[] = [];
  const watch = (page: Page): void => {
    page.on('console', (message) => {
      consoleLines.push(`${message.type()}: ${message.text()}`);
      consoleAt.push({ type: message.type(), text: message.text(), url: message.location().url });
    });
    page.on('pageerror', (error) => errors.push(`${error.name}: ${error.message}`));
  };
  const blocking = new WeakMap<Page, Promise<void>>();
  context.on('page', (opened) => {
    watch(opened);
    const blocked = blockThirdPartyCookies(context, opened);
    blocked.catch(() => undefined); // a popup closed at once; the main page's failure is raised below
    blocking.set(opened, blocked);
  });
  const page = await context.newPage();
  await (blocking.get(page) ?? blockThirdPartyCookies(context, page));
  return { context, page, console: consoleLines, consoleAt, errors, close: () => context.close() };
}

/**
 * A request's headers as sent, cookies included. Playwright's allHeaders() waits for Chromium's raw-headers event
 * with no time limit, and a navigation the browser then refuses to show may never get one: fail instead of hanging.
 */
export async function rawHeaders(request: Request, limitMs = 10_000): Promise<Record<string, string>> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([request.allHeaders(), new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Chromium reported no raw headers for ${request.url()} in ${limitMs} ms`)), limitMs);
    })]);
  } finally {
    clearTimeout(timer);
  }
}
