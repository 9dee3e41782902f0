// Response rewriting for embedded apps: the frame script (and the bridge's, for apps that have one) goes into HTML,
// framing rules into the headers.
import { escapeHtml } from '../http/respond.js';
import { setsSessionCookie } from './cookies.js';

export const FRAME_SCRIPT_PATH = '/_embedgate/frame.js';
export const BOOTSTRAP_SCRIPT_PATH = '/_embedgate/bootstrap.js';
export const WORKER_PAGE_SCRIPT_PATH = '/_embedgate/worker-page.js';
export const BRIDGE_SCRIPT_PATH = '/_embedgate/bridge.js';

export interface FrameScriptOptions {
  /** where the script is loaded from (the versioned path) */
  src: string;
  /** the script's source, to put inline instead (needs the nonce) */
  inline?: string;
  origins: string[];
  mode: 'app' | 'bootstrap';
  headerMode: boolean;
  /** Header mode for an app that reads the bearer itself: its first requests wait for the token. */
  waitForToken?: boolean;
  /** Seconds since the epoch when the session ends (app mode). */
  expiresAt?: number;
  /** embed.mode: how the session travels (cookie, the service worker's handle, or whichever works). */
  embedMode: 'auto' | 'cookie' | 'worker';
  /** bootstrap mode: the app's prefix, which the service worker is registered for. */
  scope?: string;
  nonce?: string;
}

export function frameScriptTag(options: FrameScriptOptions): string {
  const attributes = [
    ...(options.inline === undefined ? [`src="${escapeHtml(options.src)}"`] : []),
    `data-embedgate-origins="${escapeHtml(JSON.stringify(options.origins))}"`,
    `data-embedgate-mode="${options.mode}"`,
    `data-embedgate-header-mode="${String(options.headerMode)}"`,
    `data-embedgate-embed-mode="${options.embedMode}"`,
    ...(options.scope === undefined ? [] : [`data-embedgate-scope="${escapeHtml(options.scope)}"`]),
    ...(options.waitForToken === true ? ['data-embedgate-wait-for-token="true"'] : []),
    ...(options.expiresAt === undefined ? [] : [`data-embedgate-expires="${options.expiresAt}"`]),
    ...(options.nonce === undefined ? [] : [`nonce="${options.nonce}"`]),
  ];
  // In a script element only "</script" can end it early; "<\/script" means the same inside strings and regexps.
  const inline = options.inline?.replace(/<\/(script)/gi, '<\\/$1') ?? '';
  return `<script ${attributes.join(' ')}>${inline}</script>`;
}

/** The page side of worker mode, for pages that came through the service worker. */
export function workerPageScriptTag(src: string, nonce: string): string {
  return `<script src="${escapeHtml(src)}" nonce="${nonce}"></script>`;
}

/** What an app's bridge may do (embed.bridge), as the bridge script reads it. */
export interface BridgeScriptOptions {
  src: string;
  nonce: string;
  origins: string[];
  set: string[];
  publish: string[];
  events: boolean;
  prefix: string;
}

/** The app half of the host ↔ app bridge, with what the app's config allows. */
export function bridgeScriptTag(options: BridgeScriptOptions): string {
  const capabilities = { set: options.set, publish: options.publish, events: options.events, prefix: options.prefix };
  return `<script src="${escapeHtml(options.src)}" nonce="${options.nonce}" data-embedgate-origins="${escapeHtml(JSON.stringify(options.origins))}" `
    + `data-embedgate-bridge="${escapeHtml(JSON.stringify(capabilities))}"></script>`;
}

/** Puts `tag` first in <head> (else after <html>, else at the very start), before any script of the app. */
export function injectIntoHtml(html: string, tag: string): string {
  const anchor = /<head\b[^>]*>/i.exec(html) ?? /<html\b[^>]*>/i.exec(html);
  if (anchor === null) return tag + html;
  const at = anchor.index + anchor[0].length;
  return html.slice(0, at) + tag + html.slice(at);
}

type Directives = Array<[string, string[]]>;

function parsePolicy(policy: string): Directives {
  return policy.split(';').map((part) => part.trim()).filter((part) => part !== '').map((part) => {
    const [name = '', ...sources] = part.split(/\s+/);
    return [name.toLowerCase(), sources];
  });
}

function formatPolicy(directives: Directives): string {
  return directives.map(([name, sources]) => [name, ...sources].join(' ')).join('; ');
}

/**
 * Adds `addition(sources)` to each directive in `names`; when none of them is present but default-src is, a copy of
 * default-src under the first name gets it, so nothing else default-src governs is loosened.
 */
function allowIn(directives: Directives, names: string[], addition: (sources: string[]) => string): Directives {
  const present = directives.some(([name]) => names.includes(name));
  const fallback = directives.find(([name]) => name === 'default-src');
  if (!present && fallback === undefined) return directives;
  const add = (sources: string[]): string[] => {
    const kept = sources.filter((source) => source !== "'none'");
    return [...kept, addition(kept)];
  };
  if (!present) return [...directives, [names[0] as string, add((fallback as [string, string[]])[1])]];
  return directives.map(([name, sources]) => (names.includes(name) ? [name, add(sources)] : [name, sources]));
}

/**
 * Lets the injected script run, and reach /_embedgate/session, under the app's own policy without loosening it for
 * anything else: a nonce where the policy already works with nonces, hashes or 'strict-dynamic' (there
 * 'unsafe-inline' is ignored anyway), else the exact URL of the script (a nonce would switch off 'unsafe-inline').
 */
function allowFrameScript(directives: Directives, nonce: string, scriptUrls: string[], sessionUrl: string): Directives {
  const withScript = allowIn(directives, ['script-src', 'script-src-elem'], (sources) => (
    sources.some((source) => /^'(nonce-|sha256-|sha384-|sha512-|strict-dynamic')/.test(source)) ? `'nonce-${nonce}'` : scriptUrls.join(' ')
  ));
  return allowIn(withScript, ['connect-src'], () => sessionUrl);
}

export interface EmbedHeaderOptions {
  frameAncestors: string;
  /** Set when the frame script is injected into this response; `urls` are the scripts injected with it. */
  script?: { nonce: string; urls: string[]; sessionUrl: string };
}

/**
 * Drops X-Frame-Options and any frame-ancestors of the app, adds the gateway's frame-ancestors, and (when the
 * script is injected) allows the frame script in every policy the app sets.
 */
export function rewriteEmbedHeaders(headers: Record<string, string | string[]>, options: EmbedHeaderOptions): void {
  delete headers['x-frame-options'];
  // Most responses (scripts, data, callbacks) set neither a policy nor cookies: only frame-ancestors to add.
  if (options.script === undefined && headers['content-security-policy'] === undefined && headers['set-cookie'] === undefined) {
    headers['content-security-policy'] = `frame-ancestors ${options.frameAncestors}`;
    return;
  }
  const cookies = [headers['set-cookie'] ?? []].flat().filter((cookie) => !setsSessionCookie(cookie));
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  else delete headers['set-cookie'];
  // One header may hold several policies separated by commas; each is enforced on its own.
  const policies = [headers['content-security-policy'] ?? []].flat().flatMap((value) => value.split(','));
  const rewritten = policies.map((policy) => {
    let directives = parsePolicy(policy).filter(([name]) => name !== 'frame-ancestors');
    if (options.script !== undefined) directives = allowFrameScript(directives, options.script.nonce, options.script.urls, options.script.sessionUrl);
    return formatPolicy(directives);
  }).filter((policy) => policy !== '');
  rewritten.push(`frame-ancestors ${options.frameAncestors}`);
  headers['content-security-policy'] = rewritten.length === 1 ? rewritten[0] as string : rewritten;
}
