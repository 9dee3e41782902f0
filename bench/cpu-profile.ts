// Summarizes a V8 .cpuprofile by self time: per function (name and source location), and per area (embedgate's own
// code, each npm package, Node's internals, native code, garbage collection), largest first.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  /** A function and where it is (a path in the repository or a package), or an area. */
  name: string;
  selfMs: number;
  /** Share of the busy time (idle excluded). */
  percent: number;
}

export interface ProfileSummary {
  functions: ProfileEntry[];
  areas: ProfileEntry[];
}

const ROOT = fileURLToPath(new URL('../', import.meta.url));

function shortPath(url: string): string {
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  return path.startsWith(ROOT) ? path.slice(ROOT.length).replace(/^.*node_modules\//, '') : path;
}

function areaOf({ functionName, url }: ProfileNode['callFrame']): string {
  if (url === '') return functionName.startsWith('(') ? functionName : 'native code (socket writes, string encoding, …)';
  if (url.startsWith('node:')) return 'Node.js internals (http, net, streams, events, module loading)';
  // The only WebAssembly in the gateway is undici's HTTP parser (llhttp).
  if (url.startsWith('wasm://')) return 'undici';
  if (url.includes('/packages/embedgate/')) return 'embedgate';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  return pkg === null ? shortPath(url) : (pkg[1] as string);
}

function top(selfUs: Map<string, number>, count: number): ProfileEntry[] {
  selfUs.delete('(idle)');
  const busy = [...selfUs.values()].reduce((sum, us) => sum + us, 0);
  return [...selfUs.entries()].sort((a, b) => b[1] - a[1]).slice(0, count)
    .map(([name, us]) => ({ name, selfMs: us / 1000, percent: (100 * us) / busy }));
}

export function summarizeProfile(file: string, count: number): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const frame = nodes.get(id);
    if (frame === undefined) return;
    const us = profile.timeDeltas[i] ?? 0;
    const name = `${frame.functionName || '(anonymous)'}${frame.url === '' ? '' : ` ${shortPath(frame.url)}:${frame.lineNumber + 1}`}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    const area = areaOf(frame);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
  });
  return { functions: top(byFunction, count), areas: top(byArea, count) };
}
