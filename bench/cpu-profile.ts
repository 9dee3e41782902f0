// Compares two V8 .cpuprofiles of processes that served the same requests, by self time per request: per area
// (embedgate's own code, each npm package, Node's internals, native code, garbage collection) and per function (name
// and source location), with what the first adds over the second.
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

/** A function (name and where it is) or an area, with its self time per request in each process. */
export interface ComparedEntry {
  name: string;
  /** µs per request in the process under study (the gateway) and in the baseline (the bare proxy). */
  us: number;
  baselineUs: number;
}

/** A profile and the requests its process served while profiled. */
export interface ProfiledRun {
  file: string;
  requests: number;
}

export interface ComparedProfiles {
  requests: number;
  /** Busy time per request (idle excluded), µs. */
  totalUs: number;
  baselineTotalUs: number;
  /** Every area, largest first in the process under study. */
  areas: ComparedEntry[];
  /** The functions that add the most per request over the baseline. */
  added: ComparedEntry[];
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

/** Self time per function and per area (µs), idle excluded. */
function selfTimes(file: string): { byFunction: Map<string, number>; byArea: Map<string, number> } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const frame = nodes.get(id);
    if (frame === undefined || frame.functionName === '(idle)') return;
    const us = profile.timeDeltas[i] ?? 0;
    const name = `${frame.functionName || '(anonymous)'}${frame.url === '' ? '' : ` ${shortPath(frame.url)}:${frame.lineNumber + 1}`}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    const area = areaOf(frame);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
  });
  return { byFunction, byArea };
}

const sum = (times: Map<string, number>): number => [...times.values()].reduce((total, us) => total + us, 0);

/** Both profiles per request (each process served its count of requests); `count` functions that add the most. */
export function compareProfiles(studiedRun: ProfiledRun, baselineRun: ProfiledRun, count: number): ComparedProfiles {
  const studied = selfTimes(studiedRun.file);
  const baseline = selfTimes(baselineRun.file);
  const entries = (a: Map<string, number>, b: Map<string, number>): ComparedEntry[] => [...new Set([...a.keys(), ...b.keys()])]
    .map((name) => ({ name, us: (a.get(name) ?? 0) / studiedRun.requests, baselineUs: (b.get(name) ?? 0) / baselineRun.requests }));
  return {
    requests: studiedRun.requests,
    totalUs: sum(studied.byFunction) / studiedRun.requests,
    baselineTotalUs: sum(baseline.byFunction) / baselineRun.requests,
    areas: entries(studied.byArea, baseline.byArea).sort((x, y) => y.us - x.us),
    added: entries(studied.byFunction, baseline.byFunction).sort((x, y) => (y.us - y.baselineUs) - (x.us - x.baselineUs)).slice(0, count),
  };
}
