// CPU profiles (node --cpu-prof) of the gateway (bearer requests) and of the bare proxy that relays as the gateway does
// (undici's dispatch) under the same fixed load, in interleaved rounds (so that a slower or faster stretch of the
// machine falls on both): self time per request, by area and by function, and what the gateway adds.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Child } from '../children.js';
import { compareProfiles, type ComparedProfiles, type ProfiledRun } from '../cpu-profile.js';
import { load, type Target } from '../load.js';
import type { Timing } from '../options.js';
import { startGateway } from '../servers/embedgate.js';
import { REQUEST_PATH } from '../servers/payload.js';
import { startDispatchProxy, type World } from '../world.js';

const TOP = 25;
/** Below both peaks on a 2-vCPU machine: each process serves every request, so self time per request compares. */
export const PROFILE_RATE = 5000;
const CONNECTIONS = 20;

/** The load both processes were profiled under. */
export interface ProfileLoad {
  rate: number;
  connections: number;
}

interface Profiled {
  target: Target;
  child: Child;
  profiles: string;
  requests: number;
}

/** Stops the process (a clean exit on SIGTERM is what writes the profile) and finds its profile. */
async function finish(run: Profiled): Promise<ProfiledRun> {
  await run.child.stop(20_000);
  const file = readdirSync(run.profiles).find((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no .cpuprofile in ${run.profiles}`);
  return { file: join(run.profiles, file), requests: run.requests };
}

export async function profileGateway(world: World, timing: Timing): Promise<ComparedProfiles & ProfileLoad> {
  const setup = await world.gatewaySetup('gateway-profiled', 1);
  const gatewayProfiles = join(setup.dir, 'profiles');
  const bareProfiles = join(setup.dir, 'bare-profiles');
  const gateway = await startGateway('embedgate (profiled)', { ...setup, nodeOptions: ['--cpu-prof', `--cpu-prof-dir=${gatewayProfiles}`] });
  const bare = await startDispatchProxy(world.upstreamUrl, ['--cpu-prof', `--cpu-prof-dir=${bareProfiles}`]).catch(async (error: unknown) => {
    await gateway.child.stop();
    throw error;
  });
  const runs: Profiled[] = [
    { target: { url: `${gateway.url}${REQUEST_PATH}`, headers: { authorization: `Bearer ${world.token}` } }, child: gateway.child, profiles: gatewayProfiles, requests: 0 },
    { target: { url: `${bare.url}${REQUEST_PATH}` }, child: bare.child, profiles: bareProfiles, requests: 0 },
  ];
  try {
    for (const seconds of [timing.warmupSeconds, ...Array.from({ length: timing.peakRounds }, () => timing.peakSeconds)]) {
      for (const run of runs) run.requests += (await load(run.target, { connections: CONNECTIONS, seconds, rate: PROFILE_RATE })).responses;
    }
  } catch (error) {
    await Promise.all(runs.map((run) => run.child.stop()));
    throw error;
  }
  const [studied, baseline] = await Promise.all(runs.map(finish)) as [ProfiledRun, ProfiledRun];
  return { rate: PROFILE_RATE, connections: CONNECTIONS, ...compareProfiles(studied, baseline, TOP) };
}
