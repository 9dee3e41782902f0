// The processes of a browser the bench started, so that a hung one can be killed and its CPU time counted. Chromium's
// (embed.ts), and those the engine harness and puppeteer start for Firefox and WebKit, run in process groups of their
// own (firefox, Xvfb, WebKitWebDriver with MiniBrowser and its web processes). The report's "CPU time of processes
// outside the bench" (machine.ts) counts the bench's process groups and what Node reaped from its children: the
// processes a killed browser or driver leaves to init (Chromium's renderers, WebKit's web processes) are missed, and
// end() says how much CPU time that was.
import { readdirSync, readFileSync } from 'node:fs';

interface ProcessEntry { pid: number; ppid: number; pgid: number; startTime: string; ticks: number; reapedTicks: number }

/** USER_HZ: the unit of the CPU times in /proc/<pid>/stat. */
const CLOCK_TICKS_PER_SECOND = 100;

function processTable(): ProcessEntry[] {
  const entries: ProcessEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // After "pid (comm) ": state, ppid, pgrp, …, utime (12th), stime, cutime, cstime, …, starttime (20th).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      entries.push({
        pid: Number(name), ppid: Number(fields[1]), pgid: Number(fields[2]), startTime: fields[19] ?? '',
        ticks: Number(fields[11]) + Number(fields[12]), reapedTicks: Number(fields[13]) + Number(fields[14]),
      });
    } catch {
      // Gone meanwhile.
    }
  }
  return entries;
}

/** This process's descendants. */
function descendants(table: ProcessEntry[]): ProcessEntry[] {
  const found = new Map<number, ProcessEntry>();
  let parents = [process.pid];
  while (parents.length > 0) {
    const children = table.filter((entry) => parents.includes(entry.ppid) && !found.has(entry.pid));
    for (const child of children) found.set(child.pid, child);
    parents = children.map((child) => child.pid);
  }
  return [...found.values()];
}

/**
 * The process groups started from now on (the browser's) and their CPU time, sampled at note() and, if asked, every
 * `sampleEveryMs`; end() kills them. Processes in the bench's own group (esbuild's service under tsx) are left alone.
 */
export class BrowserProcesses {
  private readonly groups = new Set<number>();
  /** Highest utime + stime seen per process (pid and start time), in clock ticks. */
  private readonly ticks = new Map<string, number>();
  private readonly ownGroup: number | undefined;
  private readonly previousGroups: Set<number>;
  private readonly reapedAtStart: number;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(options: { sampleEveryMs?: number } = {}) {
    const table = processTable();
    const own = table.find((entry) => entry.pid === process.pid);
    this.ownGroup = own?.pgid;
    this.reapedAtStart = own?.reapedTicks ?? 0;
    this.previousGroups = new Set(descendants(table).map((entry) => entry.pgid));
    if (options.sampleEveryMs !== undefined) this.timer = setInterval(() => this.note(), options.sampleEveryMs).unref();
  }

  /** Notes the new groups (a group outlives a parent that exits first, but is no longer found from here) and their CPU. */
  note(): void {
    const table = processTable();
    for (const { pgid } of descendants(table)) {
      if (pgid !== this.ownGroup && !this.previousGroups.has(pgid)) this.groups.add(pgid);
    }
    for (const entry of table) {
      if (!this.groups.has(entry.pgid)) continue;
      const key = `${entry.pid}:${entry.startTime}`;
      this.ticks.set(key, Math.max(this.ticks.get(key) ?? 0, entry.ticks));
    }
  }

  /**
   * Kills the groups and waits (at most 2 s) until they are gone; returns the CPU seconds they used that the bench's
   * own accounting missed (all they used, less what Node reaped from its children meanwhile).
   */
  async end(): Promise<number> {
    clearInterval(this.timer);
    this.note();
    for (const group of this.groups) signal(-group);
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && processTable().some((entry) => this.groups.has(entry.pgid))) await new Promise((resolve) => setTimeout(resolve, 50));
    const used = [...this.ticks.values()].reduce((sum, ticks) => sum + ticks, 0);
    const reaped = (processTable().find((entry) => entry.pid === process.pid)?.reapedTicks ?? 0) - this.reapedAtStart;
    return Math.max(0, used - reaped) / CLOCK_TICKS_PER_SECOND;
  }
}

function signal(target: number): void {
  try {
    process.kill(target, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
