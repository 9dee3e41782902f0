// A tiny "browser" for the IdP's server-rendered pages: fetch() with a cookie jar, manual redirects and HTML forms.

export interface Page {
  /** The URL of the last response, or the redirect target that left the IdP origin (see `left`). */
  url: string;
  /** True when a redirect pointed outside the IdP origin; `url` is then that target and it was not fetched. */
  left: boolean;
  status: number;
  headers: Headers;
  /** The body of the last response fetched ('' when the chain left the origin). */
  html: string;
  /** Every URL requested, in order (redirect hops included). */
  visited: string[];
}

export interface HtmlForm {
  action: string;
  method: string;
  /** Named hidden/text fields with their current values (buttons are not included). */
  fields: Record<string, string>;
  /** Submit buttons: name/value (if any) and formaction (if any). */
  buttons: { text: string; name?: string; value?: string; formaction?: string }[];
}

interface StoredCookie {
  name: string;
  value: string;
  path: string;
}

const MAX_REDIRECTS = 20;

function decodeEntities(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))
    .replace(/&#x([0-9a-f]+);/gi, (_, code: string) => String.fromCharCode(parseInt(code, 16)))
    .replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function attributes(tag: string): Record<string, string> {
  const attrs: Record<string, string> = {};
  for (const match of tag.matchAll(/([A-Za-z_:][-A-Za-z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    const name = (match[1] as string).toLowerCase();
    if (attrs[name] === undefined) attrs[name] = decodeEntities(match[2] ?? match[3] ?? match[4] ?? '');
  }
  return attrs;
}

/** The <form>s of a page, with their fields (enough for the IdP's plain server-rendered HTML). */
export function parseForms(html: string, baseUrl: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = attributes((match[1] as string));
    const body = match[2] as string;
    const fields: Record<string, string> = {};
    for (const input of body.matchAll(/<input\b([^>]*)>/gi)) {
      const field = attributes(input[1] as string);
      if (field.name !== undefined && field.type !== 'submit') fields[field.name] = field.value ?? '';
    }
    const buttons: HtmlForm['buttons'] = [];
    for (const button of body.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)) {
      const attr = attributes(button[1] as string);
      buttons.push({
        text: decodeEntities((button[2] as string).replace(/<[^>]*>/g, '')).trim(),
        ...(attr.name === undefined ? {} : { name: attr.name, value: attr.value ?? '' }),
        ...(attr.formaction === undefined ? {} : { formaction: new URL(attr.formaction, baseUrl).href }),
      });
    }
    forms.push({
      action: new URL(attrs.action ?? '', baseUrl).href,
      method: (attrs.method ?? 'get').toLowerCase(),
      fields,
      buttons,
    });
  }
  return forms;
}

/** Cookies per (name, path), host-only for the one origin the session talks to. */
export class BrowserSession {
  readonly origin: string;
  private readonly jar = new Map<string, StoredCookie>();
  /** The last page fetched, for `submit()`. */
  last: Page | undefined;

  constructor(origin: string) {
    this.origin = new URL(origin).origin;
  }

  /** Cookie names currently held (for assertions). */
  cookieNames(): string[] {
    return [...new Set([...this.jar.values()].map((cookie) => cookie.name))];
  }

  clearCookies(): void {
    this.jar.clear();
  }

  private cookieHeader(url: URL): string | undefined {
    const matching = [...this.jar.values()]
      .filter((cookie) => url.pathname === cookie.path || url.pathname.startsWith(cookie.path.endsWith('/') ? cookie.path : `${cookie.path}/`))
      .sort((a, b) => b.path.length - a.path.length);
    return matching.length === 0 ? undefined : matching.map((cookie) => `${cookie.name}=${cookie.value}`).join('; ');
  }

  private store(url: URL, headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair = '', ...options] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = url.pathname.slice(0, url.pathname.lastIndexOf('/')) || '/';
      let expired = false;
      for (const option of options) {
        const [key = '', optionValue = ''] = option.split('=').map((part) => part.trim());
        const lower = key.toLowerCase();
        if (lower === 'path' && optionValue.startsWith('/')) path = optionValue;
        if (lower === 'max-age' && Number(optionValue) <= 0) expired = true;
        if (lower === 'expires' && Date.parse(optionValue) <= Date.now()) expired = true;
      }
      const key = `${name}\u0000${path}`;
      if (expired || value === '') this.jar.delete(key);
      else this.jar.set(key, { name, value, path });
    }
  }

  /** One request with cookies, no redirect following. */
  async request(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const target = new URL(url, this.origin);
    const headers = new Headers(init.headers);
    const cookie = target.origin === this.origin ? this.cookieHeader(target) : undefined;
    if (cookie !== undefined) headers.set('cookie', cookie);
    const response = await fetch(target, { ...init, headers, redirect: 'manual' });
    if (target.origin === this.origin) this.store(target, response.headers);
    return response;
  }

  private async navigate(url: string | URL, init: RequestInit): Promise<Page> {
    const visited: string[] = [];
    let target = new URL(url, this.origin);
    let current = init;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop += 1) {
      if (target.origin !== this.origin) {
        this.last = { url: target.href, left: true, status: 0, headers: new Headers(), html: '', visited };
        return this.last;
      }
      visited.push(target.href);
      const response = await this.request(target, current);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location !== null) {
        await response.body?.cancel();
        target = new URL(location, target);
        if (response.status !== 307 && response.status !== 308) current = { method: 'GET' };
        continue;
      }
      this.last = { url: target.href, left: false, status: response.status, headers: response.headers, html: await response.text(), visited };
      return this.last;
    }
    throw new Error(`more than ${MAX_REDIRECTS} redirects from ${String(url)}`);
  }

  /** GET, following redirects within the IdP origin. */
  get(url: string | URL): Promise<Page> {
    return this.navigate(url, { method: 'GET', headers: { accept: 'text/html' } });
  }

  /** POSTs a urlencoded form like a browser on the IdP's own page would (with its Origin), following redirects. */
  postForm(url: string | URL, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Page> {
    return this.navigate(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: this.origin, accept: 'text/html', ...headers },
      body: new URLSearchParams(fields).toString(),
    });
  }

  /**
   * Fills in and submits a form of the last page like a user clicking a submit button: `button` picks the button by
   * its text (searched in every form; its name/value and formaction are used), else `index` picks the form (default 0).
   * `fields` override the form's values.
   */
  submit(fields: Record<string, string> = {}, options: { index?: number; button?: string | RegExp } = {}): Promise<Page> {
    if (this.last === undefined) throw new Error('no page loaded');
    const forms = parseForms(this.last.html, this.last.url);
    const wanted = options.button;
    const matches = (text: string): boolean => (typeof wanted === 'string' ? text === wanted : wanted !== undefined && wanted.test(text));
    const form = wanted === undefined ? forms[options.index ?? 0] : forms.find((f) => f.buttons.some((b) => matches(b.text)));
    if (form === undefined) {
      throw new Error(`no form ${wanted === undefined ? `#${options.index ?? 0}` : `with a button ${String(wanted)}`} on ${this.last.url} (status ${this.last.status}):\n${this.last.html}`);
    }
    const button = wanted === undefined ? form.buttons[0] : form.buttons.find((b) => matches(b.text));
    const values = { ...form.fields, ...(button?.name === undefined ? {} : { [button.name]: button.value ?? '' }), ...fields };
    return this.postForm(button?.formaction ?? form.action, values);
  }
}
