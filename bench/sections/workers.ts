// `embedgate serve --workers 1` vs `--workers 2`, both on the default SQLite session store the workers share, loaded
// with an embed session cookie (made through one worker, read by any): interleaved rounds, the best of each counts.
import { load, morePerSecond, steadyLoad } from '../load.js';
import type { Timing } from '../options.js';
import type { WorkersResults } from '../results.js';
import { supportsWorkers } from '../servers/embedgate-cli.js';
import { createSession, startGateway, type RunningGateway } from '../servers/embedgate.js';
import { REQUEST_PATH } from '../servers/payload.js';
import type { World } from '../world.js';

export async function compareWorkers(world: World, timing: Timing, log: (line: string) => void): Promise<WorkersResults> {
  if (!supportsWorkers()) return { supported: false };
  const started: RunningGateway[] = [];
  try {
    for (const workers of [1, 2]) {
      started.push(await startGateway(`embedgate --workers ${workers}`, { ...(await world.gatewaySetup(`gateway-workers-${workers}`, 1)), workers }));
    }
    const targets = await Promise.all(started.map(async (gateway) => ({
      url: `${gateway.url}${REQUEST_PATH}`, headers: { cookie: await createSession(gateway.url, world.token) },
    })));
    const run = { connections: timing.peakConnections, seconds: timing.peakSeconds };
    for (const target of targets) await load(target, { ...run, seconds: timing.warmupSeconds });
    const best = [0, 0];
    for (let round = 1; round <= timing.peakRounds; round++) {
      for (const [i, target] of targets.entries()) {
        const figures = await steadyLoad(`--workers ${i + 1}`, target, run, morePerSecond);
        best[i] = Math.max(best[i] as number, figures.rps);
      }
      log(`workers, round ${round}: --workers 1 ${Math.round(best[0] as number)} req/s, --workers 2 ${Math.round(best[1] as number)} req/s (best so far)`);
    }
    return { supported: true, oneRps: best[0] as number, twoRps: best[1] as number };
  } finally {
    await Promise.all(started.map((gateway) => gateway.child.stop()));
  }
}
