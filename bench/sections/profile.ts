// A CPU profile of the gateway child (node --cpu-prof) under peak bearer load: where its time goes, by self time.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { summarizeProfile, type ProfileSummary } from '../cpu-profile.js';
import { load } from '../load.js';
import type { Timing } from '../options.js';
import { startGateway } from '../servers/embedgate.js';
import { REQUEST_PATH } from '../servers/payload.js';
import type { World } from '../world.js';

const TOP = 25;

export async function profileGateway(world: World, timing: Timing): Promise<ProfileSummary> {
  const setup = await world.gatewaySetup('gateway-profiled', 1);
  const profiles = join(setup.dir, 'profiles');
  const gateway = await startGateway('embedgate (profiled)', { ...setup, nodeOptions: ['--cpu-prof', `--cpu-prof-dir=${profiles}`] });
  try {
    const target = { url: `${gateway.url}${REQUEST_PATH}`, headers: { authorization: `Bearer ${world.token}` } };
    await load(target, { connections: timing.peakConnections, seconds: timing.warmupSeconds + timing.peakSeconds * timing.peakRounds });
  } finally {
    // A clean exit (SIGTERM, drain) is what writes the profile.
    await gateway.child.stop(20_000);
  }
  const file = readdirSync(profiles).find((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`the profiled gateway wrote no .cpuprofile in ${profiles}`);
  return summarizeProfile(join(profiles, file), TOP);
}
