// Server-rendered pages of the identity provider: plain HTML, labelled fields, no scripts, no external assets.
import { escapeHtml } from '../http/respond.js';

/** Headers for every page the IdP renders itself. */
export const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // Not no-referrer: under it browsers send `Origin: null` with the pages' own form posts, which the CSRF check refuses.
  'referrer-policy': 'same-origin',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
} as const;

const STYLE = 'body{font:16px/1.5 system-ui,sans-serif;color:#1b1b1b;background:#f4f5f7;margin:0}'
  + 'main{max-width:24rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 3px #0002}'
  + 'h1{font-size:1.4rem;margin:0 0 1rem}label{display:block;font-weight:600;margin:.75rem 0 .25rem}'
  + 'input{width:100%;box-sizing:border-box;font:inherit;padding:.5rem;border:1px solid #888;border-radius:4px}'
  + 'button{font:inherit;padding:.55rem 1rem;margin:1rem .5rem 0 0;border-radius:4px;border:1px solid #1a56db;background:#1a56db;color:#fff;cursor:pointer}'
  + 'button.secondary{background:#fff;color:#1a56db}.error{color:#b00020;font-weight:600}code{font-size:1.4rem;letter-spacing:.1em}'
  + 'ul{padding-left:1.25rem}';

export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">`
    + `<title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`;
}

function errorLine(message: string | undefined): string {
  return message === undefined ? '' : `<p class="error" role="alert">${escapeHtml(message)}</p>`;
}

function hidden(name: string, value: string): string {
  return `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`;
}

export function loginPage(options: { action: string; csrf: string; clientName: string; username?: string; error?: string }): string {
  return page('Sign in', `<p>to continue to <strong>${escapeHtml(options.clientName)}</strong></p>${errorLine(options.error)}`
    + `<form method="post" action="${escapeHtml(options.action)}" autocomplete="on">${hidden('csrf', options.csrf)}`
    + '<label for="username">Username</label>'
    + `<input id="username" name="username" required autocomplete="username" autocapitalize="none" spellcheck="false" value="${escapeHtml(options.username ?? '')}">`
    + '<label for="password">Password</label>'
    + '<input id="password" name="password" type="password" required autocomplete="current-password">'
    + '<button type="submit">Sign in</button></form>');
}

export function consentPage(options: { action: string; abortAction: string; csrf: string; clientName: string; scopes: string[] }): string {
  const list = options.scopes.map((scope) => `<li>${escapeHtml(scope)}</li>`).join('');
  return page('Allow access?', `<p><strong>${escapeHtml(options.clientName)}</strong> asks to use your account with these permissions:</p><ul>${list}</ul>`
    + `<form method="post" action="${escapeHtml(options.action)}">${hidden('csrf', options.csrf)}<button type="submit">Allow</button>`
    + `<button type="submit" class="secondary" formaction="${escapeHtml(options.abortAction)}">Deny</button></form>`);
}

export function deviceInputPage(options: { action: string; xsrf: string; error?: string }): string {
  return page('Connect a device', `<p>Enter the code your device or terminal shows.</p>${errorLine(options.error)}`
    + `<form method="post" action="${escapeHtml(options.action)}">${hidden('xsrf', options.xsrf)}`
    + '<label for="user_code">Code</label><input id="user_code" name="user_code" required autocomplete="off" autocapitalize="characters" spellcheck="false">'
    + '<button type="submit">Continue</button></form>');
}

export function deviceConfirmPage(options: { action: string; xsrf: string; userCode: string; clientName: string }): string {
  const fields = `${hidden('xsrf', options.xsrf)}${hidden('user_code', options.userCode)}`;
  return page('Confirm the device', `<p><strong>${escapeHtml(options.clientName)}</strong> wants to sign in as you. Check that your device shows this code:</p>`
    + `<p><code>${escapeHtml(options.userCode)}</code></p>`
    + `<form method="post" action="${escapeHtml(options.action)}">${fields}${hidden('confirm', 'yes')}<button type="submit">Yes, sign the device in</button></form>`
    + `<form method="post" action="${escapeHtml(options.action)}">${fields}${hidden('abort', 'yes')}<button type="submit" class="secondary">No, cancel</button></form>`);
}

export function deviceSuccessPage(clientName: string): string {
  return page('Device connected', `<p><strong>${escapeHtml(clientName)}</strong> is signed in. You can close this page.</p>`);
}

export function logoutPage(options: { action: string; xsrf: string }): string {
  return page('Sign out?', `<p>Do you want to sign out of this identity provider?</p><form method="post" action="${escapeHtml(options.action)}">`
    + `${hidden('xsrf', options.xsrf)}<button type="submit" name="logout" value="yes">Yes, sign me out</button>`
    + '<button type="submit" class="secondary">No, stay signed in</button></form>');
}

export function signedOutPage(): string {
  return page('Signed out', '<p>You are signed out.</p>');
}

export function errorPage(title: string, message: string): string {
  return page(title, `<p>${escapeHtml(message)}</p>`);
}
