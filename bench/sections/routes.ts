// Policy cost with 1 and 1,000 routes: gateway throughput (best of interleaved rounds, like the peaks) of two gateways
// started for it, equally fresh (a gateway the http section has loaded for minutes runs faster), and the in-process
// evaluation time.
import { load, morePerSecond, steadyLoad, type Target } from '../load.js';
import { measurePolicy } from '../micro/policy.js';
import type { Timing } from '../options.js';
import type { RoutesResults } from '../results.js';
import { REQUEST_PATH } from '../servers/payload.js';
import { startGateway, type RunningGateway } from '../servers/embedgate.js';
import type { World } from '../world.js';

export async function compareRoutes(world: World, timing: Timing, log: (line: string) => void): Promise<RoutesResults> {
  const started: RunningGateway[] = [];
  try {
    started.push(await startGateway('embedgate (1 route)', await world.gatewaySetup('gateway-1-route', 1)));
    started.push(await startGateway('embedgate (1,000 routes)', await world.gatewaySetup('gateway-1000-routes', 1000)));
    const target = (gateway: RunningGateway): Target => ({ url: `${gateway.url}${REQUEST_PATH}`, headers: { authorization: `Bearer ${world.token}` } });
    return await measureRoutes(target(started[0] as RunningGateway), target(started[1] as RunningGateway), timing, log);
  } finally {
    await Promise.all(started.map((gateway) => gateway.child.stop()));
  }
}

async function measureRoutes(one: Target, thousand: Target, timing: Timing, log: (line: string) => void): Promise<RoutesResults> {
  const run = { connections: timing.peakConnections, seconds: timing.peakSeconds };
  for (const target of [one, thousand]) await load(target, { ...run, seconds: timing.warmupSeconds });
  let oneRouteRps = 0;
  let thousandRoutesRps = 0;
  for (let round = 1; round <= timing.peakRounds; round++) {
    const oneRps = (await steadyLoad('1 route', one, run, morePerSecond)).rps;
    const thousandRps = (await steadyLoad('1,000 routes', thousand, run, morePerSecond)).rps;
    log(`routes, round ${round}: 1 route ${Math.round(oneRps)} req/s, 1,000 routes ${Math.round(thousandRps)} req/s`);
    oneRouteRps = Math.max(oneRouteRps, oneRps);
    thousandRoutesRps = Math.max(thousandRoutesRps, thousandRps);
  }
  return { inProcess: await measurePolicy(timing.microMs), oneRouteRps, thousandRoutesRps };
}
