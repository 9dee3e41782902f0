// Log lines: the ISO timestamp the gateway's logger writes on every line is right to the millisecond, and an access-log
// line is exactly what pino would write for it.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { AccessLog } from '../src/ops/access-log.js';
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

test('an access-log line is what logger.info would write, key for key, for any path; none below level info', () => {
  const lines: string[] = [];
  const sink = { write: (line: string) => { lines.push(line); } };
  const logger = createLogger('info', sink).child({ worker: 2 });
  const entry = { requestId: 'r-1', method: 'POST', path: '/sales/"quoted"/\u00e9t\u00e9/\u0001\\', status: 403, ms: 1.25, ip: '::ffff:127.0.0.1' };
  new AccessLog(logger).write(entry);
  logger.info({ reqId: entry.requestId, method: entry.method, path: entry.path, status: entry.status, ms: entry.ms, ip: entry.ip }, 'request');
  assert.equal(lines.length, 2);
  assert.ok(lines.every((line) => line.endsWith('}\n') && !line.slice(0, -1).includes('\n')), 'one line each');
  const [ours, pinos] = lines.map((line) => JSON.parse(line) as Record<string, unknown>) as [Record<string, unknown>, Record<string, unknown>];
  assert.deepEqual(Object.keys(ours), Object.keys(pinos), 'the same keys in the same order');
  assert.deepEqual({ ...ours, time: undefined }, { ...pinos, time: undefined });
  assert.equal(ours.path, entry.path);
  assert.ok(Date.parse(ours.time as string) <= Date.parse(pinos.time as string));

  new AccessLog(createLogger('warn', sink)).write(entry);
  assert.equal(lines.length, 2, 'nothing at level warn');
});
