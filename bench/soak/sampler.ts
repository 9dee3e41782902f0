// What is read every 30 s besides the traffic: the gateway's own /metrics (RSS, heap, open file descriptors, open
// WebSockets), its CPU time, Redis (memory, keys, the per-user session index sets) and how busy the machine was.
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { rssBytes } from '../children.js';
import { cpuSnapshot, disturbanceBetween, type CpuSnapshot } from '../machine.js';

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s. */
const TICKS_PER_SECOND = 100;

export interface ProcessSample {
  rssBytes: number;
  heapUsedBytes: number;
  openFds: number;
  websocketsOpen: number;
  eventLoopLagP99Ms: number;
  /** % of one CPU the gateway used since the previous sample. */
  cpuPercent: number;
}

export interface RedisSample {
  usedMemoryBytes: number;
  keys: number;
  /** Session ids in the per-user index sets (embedgate:subject:…): all of them, and the largest set. */
  indexedIds: number;
  largestIndex: number;
}

export interface MachineSample {
  stealPercent: number | undefined;
  otherCpuPercent: number | undefined;
  loadAverage: number;
  /** % of one CPU this process (the load generator) used since the previous call. */
  soakCpuPercent: number;
}

/** One metric's value (summed over its label sets) from Prometheus text; `absent` when it has no line (yet). */
export function metricValue(text: string, name: string, absent?: number): number {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    found = true;
  }
  if (!found) {
    if (absent !== undefined) return absent;
    throw new Error(`/metrics has no ${name}`);
  }
  return sum;
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

export class Sampler {
  private readonly redis: Redis;
  private lastTicks: number;
  private lastAt = performance.now();
  private lastCpu: CpuSnapshot | undefined = cpuSnapshot();
  private lastOwn = { usage: process.cpuUsage(), at: performance.now() };

  constructor(private readonly gatewayUrl: string, private readonly gatewayPid: number, redisUrl: string) {
    this.redis = new Redis(redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 });
    this.redis.on('error', () => undefined);
    this.lastTicks = cpuTicks(gatewayPid);
  }

  async gateway(): Promise<ProcessSample> {
    const text = await (await fetch(`${this.gatewayUrl}/metrics`)).text();
    const ticks = cpuTicks(this.gatewayPid);
    const now = performance.now();
    const cpuPercent = (100 * (ticks - this.lastTicks)) / TICKS_PER_SECOND / ((now - this.lastAt) / 1000);
    this.lastTicks = ticks;
    this.lastAt = now;
    return {
      rssBytes: metricValue(text, 'embedgate_process_resident_memory_bytes'),
      heapUsedBytes: metricValue(text, 'embedgate_nodejs_heap_size_used_bytes'),
      openFds: metricValue(text, 'embedgate_process_open_fds'),
      websocketsOpen: metricValue(text, 'embedgate_websockets_open', 0),
      eventLoopLagP99Ms: 1000 * metricValue(text, 'embedgate_nodejs_eventloop_lag_p99_seconds'),
      cpuPercent,
    };
  }

  async redisFigures(): Promise<RedisSample> {
    const info = await this.redis.info('memory');
    const usedMemoryBytes = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? Number.NaN);
    const keys = await this.redis.dbsize();
    let indexedIds = 0;
    let largestIndex = 0;
    let cursor = '0';
    do {
      const [next, found] = await this.redis.scan(cursor, 'MATCH', 'embedgate:subject:*', 'COUNT', 1000);
      cursor = next;
      for (const key of found) {
        const size = await this.redis.scard(key);
        indexedIds += size;
        largestIndex = Math.max(largestIndex, size);
      }
    } while (cursor !== '0');
    return { usedMemoryBytes, keys, indexedIds, largestIndex };
  }

  /** Steal and other processes' CPU since the previous call, and the load average. */
  machine(): MachineSample {
    const now = cpuSnapshot();
    const seen = disturbanceBetween(this.lastCpu, now);
    this.lastCpu = now;
    const load = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
    const own = { usage: process.cpuUsage(), at: performance.now() };
    const micros = own.usage.user + own.usage.system - this.lastOwn.usage.user - this.lastOwn.usage.system;
    const soakCpuPercent = (100 * micros) / 1000 / (own.at - this.lastOwn.at);
    this.lastOwn = own;
    return { stealPercent: seen?.stealPercent, otherCpuPercent: seen?.otherCpuPercent, loadAverage: load, soakCpuPercent };
  }

  static rss(pid: number): number {
    try {
      return rssBytes(pid);
    } catch {
      return Number.NaN;
    }
  }

  close(): void {
    this.redis.disconnect();
  }
}
