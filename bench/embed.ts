// Embedding budgets: the min+gzip size of the host and frame scripts, and the time the embed handshake adds before
// an app's first request (bootstrap page → token from the host → session → reload), in Chromium on loopback.
// The full side-by-side gateway benchmark comes with the performance work; this part runs today.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import type { Request } from 'playwright-core';
import { launchChromium, openTab } from '../packages/embedgate/test/support/chromium.js';
import { startEmbedEnv } from '../packages/embedgate/test/support/embed-browser-env.js';

const SCRIPT_BUDGET_BYTES = 3072;
const HANDSHAKE_BUDGET_MS = 50;
const RUNS = 15;

function scriptSizes(): void {
  console.log('script            min bytes   min+gzip   budget');
  for (const name of ['host', 'frame']) {
    const body = readFileSync(new URL(`../packages/embed/dist/${name}.min.js`, import.meta.url));
    const gzip = gzipSync(body, { level: 9 }).length;
    console.log(`${`${name}.min.js`.padEnd(16)}  ${String(body.length).padStart(9)}   ${String(gzip).padStart(8)}   ${gzip <= SCRIPT_BUDGET_BYTES ? 'ok' : 'OVER'} (≤ ${SCRIPT_BUDGET_BYTES})`);
  }
}

/** Milliseconds from the frame's first request for the app (answered with the bootstrap) to the app's own request. */
async function handshakeTimes(): Promise<number[]> {
  const env = await startEmbedEnv();
  const browser = await launchChromium();
  const times: number[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      const tab = await openTab(browser);
      const appRequests: number[] = [];
      const appUrl = `${env.gwOrigin}/sales/`;
      tab.page.on('request', (request: Request) => {
        if (request.url() === appUrl && request.isNavigationRequest()) appRequests.push(performance.now());
      });
      await tab.page.goto(`${env.host.origin}/host.html?user=alice&ttl=300`);
      await tab.page.waitForFunction(() => (window as unknown as { events?: Array<{ type: string }> }).events?.some((e) => e.type === 'ready'), undefined, { timeout: 15000 });
      if (appRequests.length >= 2) times.push((appRequests[1] as number) - (appRequests[0] as number));
      await tab.close();
    }
  } finally {
    await browser.close();
    await env.close();
  }
  return times.sort((a, b) => a - b);
}

scriptSizes();
const times = await handshakeTimes();
const at = (q: number): number => times[Math.min(times.length - 1, Math.floor(q * times.length))] as number;
console.log(`\nembed handshake (bootstrap request → app request), ${times.length} runs in Chromium on loopback:`);
console.log(`  median ${at(0.5).toFixed(1)} ms, p90 ${at(0.9).toFixed(1)} ms, best ${at(0).toFixed(1)} ms — budget ${HANDSHAKE_BUDGET_MS} ms: ${at(0.5) <= HANDSHAKE_BUDGET_MS ? 'ok' : 'OVER'}`);
