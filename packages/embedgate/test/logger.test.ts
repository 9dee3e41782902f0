// Log lines: the ISO timestamp the gateway's logger writes on every line is right to the millisecond, an access-log
// line is exactly what pino would write for it, and no line is lost or reordered on the way to stdout.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
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

/** Runs `script` (an ES module) in a child Node with tsx; resolves with its stdout once it has exited. */
function runScript(script: string): Promise<{ stdout: string; code: number | null }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => { stdout += text; });
  return new Promise((resolve) => child.on('close', (code) => resolve({ stdout, code })));
}

test('every line reaches stdout in order, those still pending when the process exits or dies of an error included', async () => {
  const logger = JSON.stringify(new URL('../src/ops/logger.ts', import.meta.url).href);
  for (const ending of ['process.exit(0)', 'throw new Error("the app failed")']) {
    // A burst of 1,000 lines in one turn of the event loop, then three in the next, the last turn of the process.
    const { stdout, code } = await runScript(`import { createLogger } from ${logger};
      const logger = createLogger('info');
      for (let n = 0; n < 1000; n++) logger.info({ n }, 'burst');
      setImmediate(() => { for (let n = 1000; n < 1003; n++) logger.info({ n }, 'last'); ${ending}; });`);
    assert.equal(code, ending.startsWith('throw') ? 1 : 0);
    const numbers = stdout.trimEnd().split('\n').map((line) => (JSON.parse(line) as { n: number }).n);
    assert.deepEqual(numbers, Array.from({ length: 1003 }, (_, n) => n), `${ending}: every line, once, in order`);
  }
});
