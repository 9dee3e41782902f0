// The host ↔ app bridge's latency: how long a host page waits between handle.setProps() and the 'props' event of the
// output the app's callback makes from it, beside the same callback triggered by a click inside the frame.
// The demo's Dash app (Dash's real renderer) behind an in-process gateway whose config lets the host set region.value
// and publishes chart.figure (bridge-site.ts); headless Chromium (Debian's, driven by playwright-core, third-party
// cookies blocked) opens a host page on another site that attaches the app. Then, interleaved, each time to another
// region, so that the callback really runs:
// - through the bridge: the host page calls handle.setProps('region', { value }) and times, on its own clock, until
//   its 'props' listener gets the chart.figure of that region;
// - a click in the frame: the dropdown is opened, then its option clicked with real mouse input (CDP); timed on the
//   frame's clock from the option's click event to the renderer's store holding the new chart.figure;
// - set_props in the frame (reference): the renderer's dash_clientside.set_props, the very call the bridge makes,
//   timed on the frame's clock to the same store change.
// Each run starts once the previous one has settled (no callback pending, the chart drawn, the host told). What the
// bridge adds is the median through the bridge minus the median of the click (the budget), or of set_props in the
// frame (the bridge's messages alone: the click also costs the dropdown's own event handling).
import type { Frame, Page } from 'playwright-core';
import { launchChromium, openTab, type BrowserTab } from '../packages/embedgate/test/support/chromium.js';
import { BrowserProcesses } from './browser-processes.js';
import { APP_PATH, chartTitle, PROBE_SCRIPT, REGIONS, startBridgeSite, type BridgeSite } from './bridge-site.js';
import type { VisitStats } from './embed.js';
import { median, quantile } from './stats.js';
import type { Region } from '../examples/demo/src/dash-app/sales-data.js';

export type BridgePath = 'bridge' | 'click' | 'setProps';
const PATHS: BridgePath[] = ['bridge', 'click', 'setProps'];
/** Rounds of every path before the measured ones (the first setProps also loads the bridge's code paths). */
const WARMUP_ROUNDS = 2;
/** One step (a run, opening the page) that takes this long is stuck: the section fails instead of hanging. */
const STEP_MS = 20_000;

export interface BridgeFigures {
  runs: number;
  /** The browser, as Playwright reports its version. */
  browser: string;
  /** The published output timed, and the prop the host sets. */
  output: string;
  input: string;
  /** handle.setProps → the host's 'props' event with the new output (host clock). */
  bridge: VisitStats;
  /** The dropdown option's click event in the frame → the renderer's store holds the new output (frame clock). */
  click: VisitStats;
  /** dash_clientside.set_props in the frame → the same store change (frame clock). */
  setProps: VisitStats;
  /** bridge median − click median: what the budget is about. */
  addedMs: number;
  /** bridge median − setProps median: the bridge's own messages and checks. */
  addedOverSetPropsMs: number;
  /** Every measured time, in run order, per path. */
  samples: Record<BridgePath, number[]>;
  /** CPU seconds of Chromium's processes that the run's "processes outside the bench" counted (the report takes them out). */
  uncountedCpuSeconds?: number;
}

/** `promise`, or a rejection naming `what` after STEP_MS. */
async function step<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing after ${STEP_MS / 1000} s`)), STEP_MS);
    })]);
  } finally {
    clearTimeout(timer);
  }
}

const js = JSON.stringify;

class Runner {
  private current: Region = REGIONS[0];

  constructor(
    private readonly page: Page,
    private readonly app: Frame,
  ) {}

  /** The region after the current one: every run changes the region, so the callback runs every time. */
  private next(): string {
    this.current = REGIONS[(REGIONS.indexOf(this.current as Region) + 1) % REGIONS.length] as Region;
    return this.current;
  }

  /** Waits until the app has finished with `region` (callbacks, chart) and the host has heard its chart.figure. */
  async settle(region: string): Promise<void> {
    const title = chartTitle(region);
    await step(Promise.all([
      this.app.evaluate(`window.benchProbe.settled(${js(title)})`),
      this.page.evaluate(`window.bench.published(${js(title)})`),
    ]), `settling on ${region}`);
  }

  async run(path: BridgePath): Promise<number> {
    const region = this.next();
    const title = chartTitle(region);
    let ms: number;
    if (path === 'bridge') {
      ms = await step(this.page.evaluate(`window.bench.viaBridge(${js(region)}, ${js(title)})`) as Promise<number>, `setProps(${region}) through the bridge`);
    } else if (path === 'setProps') {
      ms = await step(this.app.evaluate(`window.benchProbe.viaSetProps(${js(region)}, ${js(title)})`) as Promise<number>, `set_props(${region}) in the frame`);
    } else {
      // Open the dropdown (not timed), then arm the probe and click the option.
      await step(this.app.locator('#region').click(), 'opening the dropdown');
      const option = this.app.getByRole('option', { name: region, exact: true });
      await step(option.waitFor(), `the ${region} option`);
      await this.app.evaluate(`window.benchArmed = window.benchProbe.arm(${js(title)}); true`);
      await step(option.click(), `clicking ${region}`);
      const { storeAt, clicks } = await step(this.app.evaluate('window.benchArmed') as Promise<{ storeAt: number; clicks: number[] }>, `${region} after the click`);
      const clickAt = clicks[0];
      if (clickAt === undefined) throw new Error(`the click on ${region} reached no option`);
      ms = storeAt - clickAt;
    }
    await this.settle(region);
    return ms;
  }
}

/** The paths in turn, rotated each round (so that none always follows the same one). */
export function roundOrder(round: number): BridgePath[] {
  const shift = round % PATHS.length;
  return [...PATHS.slice(shift), ...PATHS.slice(0, shift)];
}

async function openHost(tab: BrowserTab, site: BridgeSite): Promise<Frame> {
  await tab.context.addInitScript(PROBE_SCRIPT);
  await step(tab.page.goto(site.hostPage), 'the host page');
  // The app is ready and its bridge connected once the host heard the first chart (the layout's region).
  await step(tab.page.evaluate(`window.bench.published(${js(chartTitle(REGIONS[0]))})`), 'the first chart at the host');
  const app = tab.page.frames().find((frame) => frame.url().startsWith(`${site.gateway}${APP_PATH}`));
  if (app === undefined) throw new Error('the app frame is missing');
  return app;
}

export async function measureBridge(runs: number): Promise<BridgeFigures> {
  const processes = new BrowserProcesses();
  const site = await startBridgeSite();
  const samples: Record<BridgePath, number[]> = { bridge: [], click: [], setProps: [] };
  let uncountedCpuSeconds = 0;
  let version = '';
  try {
    const browser = await launchChromium();
    try {
      version = `Chromium ${browser.version()}`;
      const tab = await openTab(browser);
      const app = await openHost(tab, site);
      const runner = new Runner(tab.page, app);
      await runner.settle(REGIONS[0]);
      for (let round = 0; round < WARMUP_ROUNDS + runs; round += 1) {
        for (const path of roundOrder(round)) {
          const ms = await runner.run(path);
          if (round >= WARMUP_ROUNDS) samples[path].push(ms);
        }
      }
      const refused = await tab.page.evaluate('window.benchErrors') as string[];
      if (refused.length > 0) throw new Error(`the bridge reported errors: ${refused.join('; ')}`);
      if (tab.errors.length > 0) throw new Error(`errors in the pages: ${tab.errors.join('; ')}`);
    } finally {
      processes.note();
      await browser.close();
    }
  } finally {
    uncountedCpuSeconds = await processes.end();
    await site.close();
  }
  const stats = (times: number[]): VisitStats => ({ medianMs: median(times), p90Ms: quantile(times, 0.9) });
  const [bridge, click, setProps] = [stats(samples.bridge), stats(samples.click), stats(samples.setProps)];
  return {
    runs, browser: version, output: 'chart.figure', input: 'region.value', bridge, click, setProps, samples, uncountedCpuSeconds,
    addedMs: bridge.medianMs - click.medianMs,
    addedOverSetPropsMs: bridge.medianMs - setProps.medianMs,
  };
}
