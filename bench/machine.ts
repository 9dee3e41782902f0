// The machine a run was made on, as the report and docs/performance.md state it, and how disturbed a run was: CPU
// time the hypervisor gave to other guests (steal) and CPU time other processes of this machine used.
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem, type } from 'node:os';
import { benchProcessGroups } from './children.js';

export interface Machine {
  cpu: string;
  cores: number;
  ramGiB: number;
  node: string;
  os: string;
  /** 1-minute load average when the run started: well above 0 means something else was running. */
  loadAverage: number;
  /** Over the whole run, % of all CPU time: taken by the hypervisor, and used by processes not of the bench. */
  stealPercent: number | undefined;
  otherCpuPercent: number | undefined;
}

export interface CpuSnapshot {
  /** Jiffies of all CPUs (/proc/stat): everything, busy (user, nice, system, irq, softirq) and steal. */
  total: number;
  busy: number;
  steal: number;
  /** Busy jiffies of the bench's own processes (its process groups). */
  own: number;
}

export interface Disturbance {
  stealPercent: number;
  otherCpuPercent: number;
}

/** Linux reports process CPU time in USER_HZ ticks, 100 a second on every architecture it runs on here. */
const TICKS_PER_SECOND = 100;

/** user + system jiffies of the processes in the given process groups, and of their children that ended. */
function groupJiffies(groups: Set<number>): number {
  let sum = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces): state, ppid, pgrp, …, utime, stime, cutime, cstime.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (groups.has(Number(fields[2]))) sum += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    } catch {
      // The process ended meanwhile.
    }
  }
  return sum;
}

/** CPU seconds used so far by the processes of these process groups (one server each), or undefined without /proc. */
export function groupCpuSeconds(groups: number[]): number | undefined {
  try {
    return groupJiffies(new Set(groups)) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** A reading of the CPU counters, or undefined where /proc is missing. */
export function cpuSnapshot(): CpuSnapshot | undefined {
  try {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
    return { total: fields.slice(0, 8).reduce((sum, n) => sum + n, 0), busy: user + nice + system + irq + softirq, steal, own: groupJiffies(benchProcessGroups()) };
  } catch {
    return undefined;
  }
}

/** Steal and other processes' CPU between two snapshots, in % of all CPU time. */
export function disturbanceBetween(since: CpuSnapshot | undefined, until: CpuSnapshot | undefined): Disturbance | undefined {
  if (since === undefined || until === undefined || until.total <= since.total) return undefined;
  const total = until.total - since.total;
  const other = (until.busy - since.busy) - (until.own - since.own);
  return { stealPercent: (100 * (until.steal - since.steal)) / total, otherCpuPercent: Math.max(0, (100 * other) / total) };
}

/** Waits (at most `maxSeconds`) for a second with steal and other processes' CPU under the given shares (%). */
export async function waitUntilQuiet(stealPercent: number, otherPercent: number, maxSeconds: number): Promise<void> {
  for (let second = 0; second < maxSeconds; second++) {
    const since = cpuSnapshot();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const seen = disturbanceBetween(since, cpuSnapshot());
    if (seen === undefined || (seen.stealPercent <= stealPercent && seen.otherCpuPercent <= otherPercent)) return;
  }
}

export function describeMachine(since: CpuSnapshot | undefined): Machine {
  const disturbance = disturbanceBetween(since, cpuSnapshot());
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${type()} ${release()}`,
    loadAverage: loadavg()[0] ?? 0,
    stealPercent: disturbance?.stealPercent,
    otherCpuPercent: disturbance?.otherCpuPercent,
  };
}
