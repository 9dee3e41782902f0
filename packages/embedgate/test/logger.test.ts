// Log lines: the ISO timestamp the gateway's logger writes on every line is right to the millisecond.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger, isoTimeOncePerSecond } from '../src/ops/logger.js';

test('the timestamp is the ISO time of each line, across second boundaries and for every width of milliseconds', () => {
  let now = Date.UTC(2026, 10, 22, 13, 59, 59, 998);
  const time = isoTimeOncePerSecond(() => now);
  for (const step of [0, 1, 1, 4, 37, 58, 900, 1, 1000, 86_400_000 - 1]) {
    now += step;
    assert.equal(time(), `,"time":"${new Date(now).toISOString()}"`);
  }
});

test('a line written through the logger carries that timestamp and no more than its fields', async () => {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => { lines.push(chunk.toString()); done(); } });
  const before = Date.now();
  createLogger('info', sink).info({ reqId: 'r1', status: 200 }, 'request');
  const line = JSON.parse(lines.join('')) as Record<string, unknown>;
  const at = Date.parse(line.time as string);
  assert.ok(at >= before && at <= Date.now(), `time ${String(line.time)} is when the line was written`);
  assert.deepEqual(Object.keys(line).sort(), ['level', 'msg', 'reqId', 'service', 'status', 'time']);
});
