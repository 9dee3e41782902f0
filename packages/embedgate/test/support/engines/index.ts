// Launches any of the three engines by name (see engine.ts for the interface).
import { launchChromiumEngine, type ChromiumOptions } from './chromium.js';
import type { Engine, EngineName, EngineOptions } from './engine.js';
import { launchFirefoxEngine, type FirefoxOptions } from './firefox.js';
import { launchWebKitEngine } from './webkit.js';

export type { Engine, EngineName, EngineOptions, EngineTab } from './engine.js';
export { FIREFOX_COOKIE_MODES } from './firefox.js';
export { makeTestTls, type TestTls } from './tls.js';

export const ENGINE_NAMES: readonly EngineName[] = ['chromium', 'firefox', 'webkit'];

export interface LaunchOptions extends EngineOptions {
  /** Only for Chromium. */
  chromium?: Omit<ChromiumOptions, keyof EngineOptions>;
  /** Only for Firefox: the cookie behaviour (default 1, reject all third-party cookies) and more prefs. */
  firefox?: Omit<FirefoxOptions, keyof EngineOptions>;
}

export function launchEngine(name: EngineName, options: LaunchOptions): Promise<Engine> {
  switch (name) {
    case 'chromium': return launchChromiumEngine({ tls: options.tls, ...options.chromium });
    case 'firefox': return launchFirefoxEngine({ tls: options.tls, ...options.firefox });
    case 'webkit': return launchWebKitEngine({ tls: options.tls });
  }
}
