// The scripts the gateway serves: size budget (3 KB min+gzip each), classic scripts without imports and no globals
// beyond window.embedgate (host) / none (bootstrap), and the host SDK as an ES module with named exports and no global.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { bundle } from '../build.mjs';

const CLASSIC = ['host.min.js', 'frame.min.js', 'bootstrap.min.js', 'worker.min.js', 'worker-page.min.js', 'bridge.min.js'] as const;
type Name = typeof CLASSIC[number] | 'host.module.min.js' | 'host-bridge.min.mjs';
const bundles = (await bundle({ write: false })) as Record<Name, string>;
const BUDGET = 3072;
/** The one import a host script makes: the bridge's host half, from the gateway, at the version it was built with. */
const BRIDGE_IMPORT = /import\(\w+\+"\/_embedgate\/host-bridge\.mjs\?v=([\w-]{16})"\)/;

for (const name of CLASSIC) {
  test(`${name} is at most ${BUDGET} bytes min+gzip and has no import/export (but the host bridge's import() in host.min.js)`, () => {
    const code = bundles[name];
    const gzip = gzipSync(Buffer.from(code), { level: 9 }).length;
    assert.ok(gzip <= BUDGET, `${name}: ${gzip} bytes gzip (${code.length} min) > ${BUDGET}`);
    assert.doesNotMatch(code.replace(BRIDGE_IMPORT, ''), /\bimport\s*[\s{*("'`.]|\bexport\s*[\s{*]|\brequire\s*\(/);
    assert.doesNotThrow(() => new vm.Script(code), 'parses as a classic script');
  });
}

test(`the host scripts import host-bridge.min.mjs (at most ${BUDGET} bytes min+gzip) at its own version, and only when a bridge connects`, () => {
  const bridge = bundles['host-bridge.min.mjs'];
  assert.ok(gzipSync(Buffer.from(bridge), { level: 9 }).length <= BUDGET);
  const version = createHash('sha256').update(bridge).digest('base64url').slice(0, 16);
  for (const name of ['host.min.js', 'host.module.min.js'] as const) {
    assert.equal(BRIDGE_IMPORT.exec(bundles[name])?.[1], version, `${name} imports the current host-bridge.mjs`);
    assert.doesNotMatch(bundles[name], /isBridgeFrameMessage|bridge-ready/, `${name} does not carry the bridge's code itself`);
  }
});

function globalsAfter(code: string, extra: Record<string, unknown>): string[] {
  const ctx = vm.createContext({ ...extra });
  vm.runInContext('globalThis.window = globalThis.parent = globalThis', ctx);
  const names = (): string[] => Array.from(vm.runInContext('Object.getOwnPropertyNames(globalThis)', ctx) as string[]);
  const before = new Set(names());
  vm.runInContext(code, ctx);
  return names().filter((k) => !before.has(k));
}

test('bootstrap.min.js defines no globals', () => {
  let shown = '';
  const dataset = { embedgateMode: 'bootstrap', embedgateOrigins: '["https://host.example"]' };
  const added = globalsAfter(bundles['bootstrap.min.js'], {
    document: {
      currentScript: { dataset }, referrer: '', body: { append() {} },
      createElement: () => ({
        style: {}, setAttribute() {},
        set textContent(text: string) {
          shown = text;
        },
      }),
    },
    location: { origin: 'https://gw.example' },
    fetch: () => Promise.reject(new Error('no')),
  });
  assert.deepEqual(added, []);
  assert.match(shown, /approved page/, 'it ran (not framed → message)');
});

test('host.min.js defines window.embedgate only', () => {
  const ctx: Record<string, unknown> = { addEventListener() {}, removeEventListener() {} };
  const added = globalsAfter(bundles['host.min.js'], ctx);
  assert.deepEqual(added, ['embedgate']);
});

test(`host.module.min.js is at most ${BUDGET} bytes min+gzip, an ES module exporting the host API, and sets no global`, async () => {
  const code = bundles['host.module.min.js'];
  const gzip = gzipSync(Buffer.from(code), { level: 9 }).length;
  assert.ok(gzip <= BUDGET, `${gzip} bytes gzip > ${BUDGET}`);
  const before = new Set(Object.getOwnPropertyNames(globalThis));
  const api = await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`) as Record<string, unknown>;
  assert.deepEqual(Object.keys(api).sort(), ['attach', 'defineElement', 'events', 'gatewayOrigin', 'version']);
  assert.equal(typeof api.attach, 'function');
  assert.deepEqual(Object.getOwnPropertyNames(globalThis).filter((name) => !before.has(name)), []);
});
