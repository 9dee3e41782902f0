// What the bridge does with a Dash app, through the renderer's own public hooks (Dash ≥ 2.16): props are set with
// dash_clientside.set_props (the app's callbacks run as if the user had changed them), published props are read
// from the renderer's stores (window.dash_stores) whenever they change, and navigation goes through the history
// event dcc.Location listens to.
import type { BridgeErrorCode, JsonValue } from './bridge-protocol.js';

interface DashStore {
  subscribe(listener: () => void): () => void;
  getState(): { appLifecycle?: string };
}

interface DashWindow {
  dash_stores?: DashStore[];
  dash_clientside?: { set_props?: (id: string, props: Record<string, unknown>) => void };
  dash_component_api?: { getLayout?: (id: string) => { props?: Record<string, unknown> } | undefined };
}

const dash = window as unknown as DashWindow;
/** How long a request waits for the app's layout to hold the component. */
const READY_TIMEOUT_MS = 10_000;

/** The component's props in the renderer's layout; undefined while the store has no layout (getLayout throws then). */
function propsOf(id: string): Record<string, unknown> | undefined {
  try {
    return dash.dash_component_api?.getLayout?.(id)?.props;
  } catch {
    return undefined;
  }
}

export class DashBridge {
  private readonly changed = new Set<() => void>();
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
    const last = new Map<string, unknown>();
    this.changed.add(() => {
      for (const { id, prop } of refs) {
        const value = propsOf(id)?.[prop];
        const key = `${id}.${prop}`;
        if (value === last.get(key)) continue;
        last.set(key, value);
        if (value !== undefined) report(id, prop, value);
      }
    });
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
