// The bridge's pure checks, in Node: what counts as JSON data, which messages each side accepts, where navigate() may
// go, and the per-frame rate limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  isBridgeFrameMessage, isBridgeHostMessage, isJsonValue, jsonSize, parseCapabilities, parsePropRef, pathWithin, rateLimit,
} from '../src/bridge-protocol.ts';

test('isJsonValue accepts plain JSON data only', () => {
  for (const value of [null, true, 0, -1.5, '', 'text', [], [1, 'a', null], {}, { a: { b: [1, { c: 'd' }] } }]) {
    assert.equal(isJsonValue(value), true, JSON.stringify(value));
  }
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const deep = JSON.parse(`${'['.repeat(40)}${']'.repeat(40)}`) as unknown;
  for (const value of [undefined, Number.NaN, Infinity, () => 1, new Date(), new Map(), /re/, new Uint8Array(2), Object.create(null), { a: undefined }, [1, () => 2], cyclic, deep, Symbol('s'), 10n]) {
    assert.equal(isJsonValue(value), false, String(typeof value === 'object' ? Object.prototype.toString.call(value) : typeof value));
  }
});

test('jsonSize is the JSON length, Infinity for what JSON cannot hold', () => {
  assert.equal(jsonSize({ a: 'xy' }), 10);
  assert.equal(jsonSize(10n), Infinity);
  assert.equal(jsonSize(undefined), Infinity);
});

test('parsePropRef splits component_id.prop and refuses anything else', () => {
  assert.deepEqual(parsePropRef('region.value'), { id: 'region', prop: 'value' });
  assert.deepEqual(parsePropRef('my-graph.clickData'), { id: 'my-graph', prop: 'clickData' });
  for (const ref of ['region', '.value', 'region.', 'a.b.c', 'region.on-click', 'has space.value', 'region.1x']) {
    assert.equal(parsePropRef(ref), undefined, ref);
  }
});

test('the app accepts set-props, navigate and event requests with a sequence number and nothing else', () => {
  const valid = [
    { type: 'set-props', seq: 0, id: 'region', props: { value: 'East' } },
    { type: 'navigate', seq: 3, path: '/sales/page-2' },
    { type: 'event', seq: 4, name: 'refresh', data: { rows: [1] } },
  ];
  for (const message of valid) assert.equal(isBridgeHostMessage(message), true, JSON.stringify(message));
  const invalid: unknown[] = [
    null, 'set-props', [], { type: 'set-props', id: 'region', props: { value: 1 } },
    { type: 'set-props', seq: -1, id: 'region', props: { value: 1 } },
    { type: 'set-props', seq: 1.5, id: 'region', props: { value: 1 } },
    { type: 'set-props', seq: 1, id: 'region', props: {} },
    { type: 'set-props', seq: 1, id: 'a.b', props: { value: 1 } },
    { type: 'set-props', seq: 1, id: 'region', props: { 'bad-prop': 1 } },
    { type: 'set-props', seq: 1, id: 'region', props: { value: new Date() } },
    { type: 'set-props', seq: 1, id: 'region', props: [1] },
    { type: 'navigate', seq: 1, path: 42 },
    { type: 'navigate', seq: 1, path: `/${'a'.repeat(3000)}` },
    { type: 'event', seq: 1, name: 'bad name', data: 1 },
    { type: 'event', seq: 1, name: 'ok', data: () => 1 },
    { type: 'token', seq: 1, token: 'x' },
  ];
  for (const message of invalid) assert.equal(isBridgeHostMessage(message), false, JSON.stringify(message) ?? String(message));
});

test('the host accepts the app\'s messages in their shapes only', () => {
  const valid = [
    { type: 'bridge-ready', capabilities: { set: [], publish: [], events: false, prefix: '/sales/' } },
    { type: 'result', seq: 1, ok: true },
    { type: 'result', seq: 2, ok: false, code: 'prop_not_allowed', message: 'no' },
    { type: 'props', id: 'selection', prop: 'data', value: { month: 'Mar', sales: 120 } },
    { type: 'props', id: 'chart', prop: 'clickData', value: null },
    { type: 'event', name: 'row-selected', data: [1, 2] },
    { type: 'navigate', path: '/sales/?tab=2' },
    { type: 'resize', height: 812 },
    { type: 'bridge-error', code: 'rate_limited', message: 'dropped' },
  ];
  for (const message of valid) assert.equal(isBridgeFrameMessage(message), true, JSON.stringify(message));
  const invalid: unknown[] = [
    { type: 'result', seq: 1, ok: false },
    { type: 'result', seq: 1, ok: false, code: 'Not A Code', message: '' },
    { type: 'result', seq: 1, ok: false, code: 'x', message: 'm'.repeat(1001) },
    { type: 'props', id: 'chart', prop: 'figure', value: undefined },
    { type: 'props', id: 'chart', prop: 'figure', value: new Map() },
    { type: 'event', name: '', data: 1 },
    { type: 'navigate', path: 'https://evil.example/' },
    { type: 'resize', height: Number.NaN },
    { type: 'resize', height: Infinity },
    { type: 'resize', height: -1 },
    { type: 'hello' },
  ];
  for (const message of invalid) assert.equal(isBridgeFrameMessage(message), false, JSON.stringify(message));
});

test('pathWithin keeps navigate() inside the app\'s prefix on the frame\'s own origin', () => {
  const self = 'https://gw.example';
  assert.equal(pathWithin('/sales/', '/sales/', self), '/sales/');
  assert.equal(pathWithin('/sales/page?x=1#top', '/sales/', self), '/sales/page?x=1#top');
  for (const path of ['/plain/', '/sales', '/sales/../plain/', '/sales/%2e%2e/plain/', '//evil.example/sales/', 'https://evil.example/sales/',
    'javascript:alert(1)', 'sales/', '']) {
    assert.equal(pathWithin(path, '/sales/', self), undefined, path);
  }
});

test('rateLimit lets a burst of the rate through, then the rate per second', () => {
  let now = 0;
  const take = rateLimit(10, () => now);
  const burst = Array.from({ length: 15 }, () => take());
  assert.equal(burst.filter(Boolean).length, 10);
  now += 500;
  assert.equal(Array.from({ length: 10 }, () => take()).filter(Boolean).length, 5, 'half a second refills half the bucket');
  now += 10_000;
  assert.equal(Array.from({ length: 20 }, () => take()).filter(Boolean).length, 10, 'never more than the burst');
});

test('the app side reads its capabilities from the gateway\'s attribute, refusing a malformed one', () => {
  assert.deepEqual(parseCapabilities('{"set":["region.value"],"publish":[],"events":true,"prefix":"/sales/"}'),
    { set: ['region.value'], publish: [], events: true, prefix: '/sales/' });
  for (const json of [undefined, '', 'null', '{"set":"region.value","publish":[],"events":true,"prefix":"/s/"}',
    '{"set":["region"],"publish":[],"events":true,"prefix":"/s/"}', '{"set":[],"publish":[],"prefix":"/s/"}']) {
    assert.equal(parseCapabilities(json), undefined, String(json));
  }
});
