// The host portal's browser script: signs in with oidc-client-ts (code + PKCE against the IdP), shows who is signed
// in, embeds each app through the gateway with the embed host SDK, talks to the sales dashboard over the bridge (the
// region picker outside the frame, the panel of the months clicked on its chart), shows the attacker's view, and signs out.
import { attach, type EmbedEventDetail, type EmbedHandle } from '@embedgate/embed/host';
import { UserManager, WebStorageStateStore, type User } from 'oidc-client-ts';

interface PortalSettings {
  issuer: string;
  clientId: string;
  gateway: string;
  apps: Array<{ name: string; title: string; path: string }>;
}

interface ProbeResult { request: string; status: number; error: string }

const byId = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`the page has no #${id}`);
  return element as T;
};

/** How many entries the selection panel keeps. */
const PANEL_ENTRIES = 5;

const STATUS_TEXT: Record<string, string> = {
  ready: 'signed in to the app',
  forbidden: 'your roles do not allow this app (403)',
  'signed-out': 'signed out of the app',
  error: 'the app could not sign you in',
};

async function main(): Promise<void> {
  const settings = await (await fetch('/config.json')).json() as PortalSettings;
  const users = new UserManager({
    authority: settings.issuer,
    client_id: settings.clientId,
    redirect_uri: `${location.origin}/callback`,
    post_logout_redirect_uri: `${location.origin}/`,
    response_type: 'code',
    scope: 'openid profile email roles offline_access',
    // offline_access (a refresh token for silent renewal) is granted only with prompt=consent; the demo IdP grants
    // consent to its own clients without asking.
    prompt: 'consent',
    // The access token is for the gateway (RFC 8707 resource indicator); the ID token then carries the user's claims.
    extraTokenParams: { resource: settings.gateway },
    automaticSilentRenew: true,
    userStore: new WebStorageStateStore({ store: sessionStorage }),
  });
  if (location.pathname === '/callback') {
    await users.signinRedirectCallback();
    history.replaceState(null, '', '/');
  }
  const user = await users.getUser();
  if (user === null || (user.expired === true && user.refresh_token === undefined)) return showSignedOut(users);
  showSignedIn(user);

  const getToken = async (): Promise<string | null> => {
    const current = await users.getUser();
    if (current !== null && current.expired !== true) return current.access_token;
    try {
      return (await users.signinSilent())?.access_token ?? null;   // uses the refresh token
    } catch {
      return null;
    }
  };
  const handles = settings.apps.map((app) => embed(app, settings.gateway, getToken));
  byId('sign-out').addEventListener('click', () => void signOut(users, handles));
  void showProbes();
}

function showSignedOut(users: UserManager): void {
  byId('signed-out-view').hidden = false;
  byId('sign-in').addEventListener('click', () => void users.signinRedirect());
}

function showSignedIn(user: User): void {
  const roles = (user.profile as { roles?: unknown }).roles;
  const who = byId('who');
  who.textContent = `${user.profile.name ?? user.profile.preferred_username ?? user.profile.sub}`;
  const badge = document.createElement('span');
  badge.className = 'roles';
  badge.id = 'roles';
  badge.textContent = Array.isArray(roles) && roles.length > 0 ? roles.join(', ') : 'no role';
  who.append(badge);
  who.hidden = false;
  byId('sign-out').hidden = false;
  byId('signed-in-view').hidden = false;
}

function embed(app: PortalSettings['apps'][number], gateway: string, getToken: () => Promise<string | null>): EmbedHandle {
  const iframe = byId<HTMLIFrameElement>(`frame-${app.name}`);
  const status = byId(`status-${app.name}`);
  // The sales dashboard has a bridge (embed.bridge in the gateway's config): its frame follows its content's height.
  const bridged = app.name === 'sales';
  const handle = attach(iframe, { gateway, getToken, autoResize: bridged });
  for (const type of ['ready', 'forbidden', 'signed-out', 'error'] as const) {
    handle.on(type, (detail) => {
      if (detail.code !== undefined) return;   // a bridge error, not the app's sign-in: the panel shows it
      status.textContent = STATUS_TEXT[type] ?? type;
      status.dataset.state = type;
    });
  }
  if (bridged) connectDashboard(handle);
  iframe.src = new URL(app.path, gateway).href;
  return handle;
}

/**
 * The region picker outside the frame sets the dashboard's region.value (its callbacks run as if the user had picked
 * it) and follows the region the app publishes; the panel lists the app's published selection.data and bridge errors.
 */
function connectDashboard(handle: EmbedHandle): void {
  const picker = byId<HTMLSelectElement>('region-picker');
  const regions = new Set([...picker.options].map((option) => option.value));
  /** The app's region, as it last told us; the picker shows it whenever no request of ours is under way. */
  let reported = picker.value;
  let pending = 0;

  picker.addEventListener('change', () => {
    const value = picker.value;
    pending += 1;
    handle.setProps('region', { value }).then(() => {
      reported = value;
    }, (error: unknown) => {
      const { code, message } = error as { code?: string; message?: string };
      showError(`could not set the region to ${value}`, code, message);
    }).finally(() => {
      pending -= 1;
      if (pending === 0) picker.value = reported;
    });
  });

  handle.on('props', ({ id, prop, value }) => {
    if (id === 'region' && prop === 'value' && typeof value === 'string' && regions.has(value)) {
      reported = value;
      if (pending === 0) picker.value = value;
      picker.disabled = false;   // the bridge is up
    } else if (id === 'selection' && prop === 'data') {
      const text = selectionText(value);
      if (text !== undefined) addEntry(text);
    }
  });
  handle.on('error', (detail) => {
    if (detail.code !== undefined) showError('the dashboard\'s bridge', detail.code, detail.message);
  });
  for (const type of ['forbidden', 'signed-out'] as const) {
    handle.on(type, () => {
      picker.disabled = true;
    });
  }
}

/** "East, Mar: 123 k$" for the app's selection.data; undefined for null (nothing selected) or anything else. */
function selectionText(value: EmbedEventDetail['value']): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { region, month, sales } = value;
  if (typeof region !== 'string' || typeof month !== 'string' || typeof sales !== 'number') return undefined;
  return `${region}, ${month}: ${sales} k$`;
}

/** "Error: could not set the region to East: the app did not answer in time (timeout)" in the panel. */
function showError(what: string, code: string | undefined, message: string | undefined): void {
  addEntry(`Error: ${what}${message ? `: ${message}` : ''}${code === undefined ? '' : ` (${code})`}`, 'error');
}

/** Adds an entry at the top of the selection panel (once, when it is the same as the newest), keeping PANEL_ENTRIES. */
function addEntry(text: string, kind: 'selection' | 'error' = 'selection'): void {
  const list = byId('selections');
  const newest = list.firstElementChild;
  if (newest?.className === kind && newest.textContent === text) return;
  list.querySelector('li.empty')?.remove();
  const item = document.createElement('li');
  item.className = kind;
  item.textContent = text;
  list.prepend(item);
  while (list.children.length > PANEL_ENTRIES) list.lastElementChild?.remove();
}

async function showProbes(): Promise<void> {
  const list = byId('probes');
  const results = await (await fetch('/probe')).json() as ProbeResult[];
  list.replaceChildren(...results.map((result) => {
    const line = document.createElement('p');
    line.className = 'probe';
    const code = document.createElement('code');
    code.textContent = result.request;
    const answer = document.createElement('strong');
    answer.textContent = ` → ${result.status}${result.error ? ` ${result.error}` : ''}`;
    line.append(code, answer);
    return line;
  }));
}

/** Ends every app's session (waiting at most 3 s for them), then the IdP session. */
async function signOut(users: UserManager, handles: EmbedHandle[]): Promise<void> {
  await Promise.all(handles.map((handle) => new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 3000);
    handle.on('signed-out', () => {
      clearTimeout(timer);
      resolve();
    });
    handle.signOut();
  })));
  await users.signoutRedirect();
}

void main();
