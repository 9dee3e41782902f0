// What the bridge does with a Dash app, through the renderer's own hooks (Dash ≥ 2.16): props are set with
// dash_clientside.set_props (the app's callbacks run as if the user had changed them), published props are read
// from the renderer's stores (window.dash_stores: its layout and the paths of components in it) whenever they
// change, and navigation goes through the history event dcc.Location listens to.
import type { BridgeErrorCode, JsonValue } from './bridge-protocol.js';

interface DashState {
  appLifecycle?: string;
  layout?: unknown;
  /** Where each component with a string id sits in the layout (a list of keys), as the renderer keeps it. */
  paths?: { strs?: Record<string, Array<string | number>> };
}

interface DashStore {
  subscribe(listener: () => void): () => void;
  getState(): DashState;
}

interface DashWindow {
  dash_stores?: DashStore[];
  dash_clientside?: { set_props?: (id: string, props: Record<string, unknown>) => void };
}

const dash = window as unknown as DashWindow;
/** How long a request waits for the app's layout to hold the component. */
const READY_TIMEOUT_MS = 10_000;

/** The component's props in the renderer's layout (Dash 2.16 and 3 keep it the same way); undefined until it is there. */
function propsOf(id: string): Record<string, unknown> | undefined {
  for (const store of dash.dash_stores ?? []) {
    const { layout, paths } = store.getState();
    const node = paths?.strs?.[id]?.reduce<unknown>((at, key) => (at as Record<string | number, unknown> | undefined)?.[key], layout);
    const props = (node as { props?: Record<string, unknown> } | undefined)?.props;
    if (props) return props;
  }
  return undefined;
}

export class DashBridge {
  private readonly changed = new Set<() => void>();
  /** The published values last reported, by `id.prop`. */
  private readonly reported = new Map<string, unknown>();
  private seen = false;

  /** Watches the renderer's stores (made later by the renderer, so their array is prepared here). */
  constructor() {
    const stores = dash.dash_stores ??= [];
    const watch = (store: DashStore): void => {
      this.seen = true;
      store.subscribe(() => this.notify());
      this.notify();
    };
    stores.forEach(watch);
    const push = stores.push.bind(stores);
    stores.push = (...added: DashStore[]): number => {
      const length = push(...added);
      added.forEach(watch);
      return length;
    };
  }

  /** Calls `report` with each published prop's value whenever it changes (the first value seen included). */
  publish(refs: Array<{ id: string; prop: string }>, report: (id: string, prop: string, value: unknown) => void): void {
    this.changed.add(() => {
      for (const { id, prop } of refs) {
        const value = propsOf(id)?.[prop];
        const key = `${id}.${prop}`;
        if (value === this.reported.get(key)) continue;
        this.reported.set(key, value);
        if (value !== undefined) report(id, prop, value);
      }
    });
    this.notify();
  }

  /** Reports every published value again (to a host page that attached after the app loaded). */
  republish(): void {
    this.reported.clear();
    this.notify();
  }

  /** Sets the props once the component is in the app's layout; the code of what went wrong, if anything. */
  async setProps(id: string, props: Record<string, JsonValue>): Promise<BridgeErrorCode | undefined> {
    // Hydrated: the renderer has the layout and the callbacks, and has rendered; props set earlier would be lost.
    const hydrated = (): boolean => dash.dash_stores?.some((store) => store.getState().appLifecycle === 'HYDRATED') === true;
    if (!(await this.until(() => hydrated() && propsOf(id) !== undefined))) return this.seen ? 'unknown_component' : 'not_supported';
    const setProps = dash.dash_clientside?.set_props;
    if (!setProps) return 'not_supported';
    setProps(id, props);
    return undefined;
  }

  /** True for a page run by dash-renderer. */
  get isDash(): boolean {
    return this.seen;
  }

  /** Moves a Dash app to `path` the way dcc.Link does: a history entry, and the event dcc.Location listens to. */
  static navigate(path: string): void {
    history.pushState({}, '', path);
    window.dispatchEvent(new CustomEvent('_dashprivate_pushstate'));
  }

  private notify(): void {
    for (const listener of this.changed) listener();
  }

  /** Resolves true as soon as `ready()` holds after a store change, false after READY_TIMEOUT_MS. */
  private until(ready: () => boolean): Promise<boolean> {
    if (ready()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (!ready()) return;
        done(true);
      };
      const done = (value: boolean): void => {
        this.changed.delete(check);
        clearTimeout(timer);
        resolve(value);
      };
      const timer = setTimeout(done, READY_TIMEOUT_MS, false);
      this.changed.add(check);
    });
  }
}
