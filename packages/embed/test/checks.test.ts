// Pure checks of the embed SDK: origin allowlist, parent-origin decision, message validation, renewal timing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_TIMER_MS, isFrameMessage, isHostMessage, isOrigin, isSameOrigin, isTokenString, originOf, parseExpiry,
  parseOrigins, renewDelay, targetOrigins,
} from '../src/checks.ts';
import { isAttach, isHello } from '../src/protocol.ts';

const HOST = 'https://host.example';
const GW = 'https://gw.example';

test('isOrigin accepts exact serialized http(s) origins only', () => {
  for (const ok of [HOST, 'http://localhost:3000', 'https://a.b.example:8443', 'http://127.0.0.1:4180']) {
    assert.equal(isOrigin(ok), true, ok);
  }
  for (const bad of ['*', 'null', '', 'https://host.example/', 'https://host.example/path', 'HTTPS://host.example',
    'https://Host.example', 'https://host.example:443', 'javascript:alert(1)', 'file:///etc', 'host.example',
    'https://user@host.example', 'data:text/html,x', 42, null, undefined, ['https://host.example']]) {
    assert.equal(isOrigin(bad), false, String(bad));
  }
});

test('parseOrigins reads the JSON allowlist and drops anything that is not an exact origin', () => {
  assert.deepEqual(parseOrigins('["https://host.example","http://localhost:3000"]'), [HOST, 'http://localhost:3000']);
  assert.deepEqual(parseOrigins('["*","https://host.example/","null",1,"https://host.example"]'), [HOST]);
  assert.deepEqual(parseOrigins('"https://host.example"'), []);
  assert.deepEqual(parseOrigins('{"0":"https://host.example"}'), []);
  assert.deepEqual(parseOrigins('not json'), []);
  assert.deepEqual(parseOrigins(''), []);
  assert.deepEqual(parseOrigins(null), []);
  assert.deepEqual(parseOrigins(undefined), []);
});

test('originOf', () => {
  assert.equal(originOf('https://host.example/page?q=1#x'), HOST);
  assert.equal(originOf(''), undefined);
  assert.equal(originOf('about:blank'), undefined);
  assert.equal(originOf('not a url'), undefined);
});

test('targetOrigins: ancestorOrigins[0] must equal an allowlist entry exactly (case 107 variants)', () => {
  const allowed = [HOST, 'http://localhost:3000'];
  const t = (ancestor: string[] | undefined, referrer = '') =>
    targetOrigins({ ancestorOrigins: ancestor, referrer, self: GW, allowed });
  assert.deepEqual(t([HOST]), [HOST]);
  assert.deepEqual(t([HOST, 'https://top.example']), [HOST]);
  // look-alikes that indexOf / endsWith / startsWith / regex checks would let through
  for (const evil of ['https://host.example.attacker.example', 'https://evilhost.example', 'https://attacker.example',
    'http://host.example', 'https://host.example:444', 'https://sub.host.example', 'https://host.exampl',
    'https://host.example.', 'https://xn--host-example', '*', '']) {
    assert.deepEqual(t([evil]), [], evil);
  }
  // the referrer is ignored when ancestorOrigins exists
  assert.deepEqual(t(['https://attacker.example'], HOST + '/page'), []);
  assert.deepEqual(t([], HOST + '/'), []);
});

test('targetOrigins: without ancestorOrigins the referrer origin decides', () => {
  const allowed = [HOST];
  const t = (referrer: string) => targetOrigins({ referrer, self: GW, allowed });
  assert.deepEqual(t('https://host.example/app/page?x=1'), [HOST]);
  assert.deepEqual(t('https://attacker.example/'), []);
  assert.deepEqual(t('https://host.example.attacker.example/'), []);
  assert.deepEqual(t('http://host.example/'), []);
});

test('targetOrigins: unknown parent → each allowlisted origin (the browser enforces targetOrigin)', () => {
  const allowed = [HOST, 'http://localhost:3000'];
  // no referrer (no-referrer policy), the frame's own origin (in-app navigation), a masked ancestor
  assert.deepEqual(targetOrigins({ referrer: '', self: GW, allowed }), allowed);
  assert.deepEqual(targetOrigins({ referrer: GW + '/sales/page', self: GW, allowed }), allowed);
  assert.deepEqual(targetOrigins({ ancestorOrigins: ['null'], referrer: '', self: GW, allowed }), allowed);
  assert.deepEqual(targetOrigins({ ancestorOrigins: ['null'], referrer: 'https://attacker.example/', self: GW, allowed }), []);
  // never '*', even if it got into the list
  assert.deepEqual(targetOrigins({ referrer: '', self: GW, allowed: ['*', 'null', HOST] }), [HOST]);
  assert.deepEqual(targetOrigins({ referrer: '', self: GW, allowed: [] }), []);
});

test('isSameOrigin resolves relative URLs against the base and compares origins exactly', () => {
  const base = GW + '/sales/';
  assert.equal(isSameOrigin('/_dash-update-component', base, GW), true);
  assert.equal(isSameOrigin('_dash-layout', base, GW), true);
  assert.equal(isSameOrigin(new URL(GW + '/x'), base, GW), true);
  assert.equal(isSameOrigin('https://gw.example:443/x', base, GW), true);
  assert.equal(isSameOrigin('//gw.example/x', base, GW), true);
  assert.equal(isSameOrigin('https://api.example/x', base, GW), false);
  assert.equal(isSameOrigin('//attacker.example/x', base, GW), false);
  assert.equal(isSameOrigin('http://gw.example/x', base, GW), false);
  assert.equal(isSameOrigin('https://gw.example.attacker.example/x', base, GW), false);
  assert.equal(isSameOrigin('data:text/plain,x', base, GW), false);
  assert.equal(isSameOrigin('http://[bad', base, GW), false);
});

test('isHostMessage validates what the frame accepts on its port', () => {
  assert.equal(isHostMessage({ type: 'token', token: 'eyJ.a.b' }), true);
  assert.equal(isHostMessage({ type: 'no-token', reason: 'signed-out' }), true);
  assert.equal(isHostMessage({ type: 'no-token', reason: 'error', message: 'x' }), true);
  assert.equal(isHostMessage({ type: 'sign-out' }), true);
  for (const bad of [null, undefined, 'token', 1, [], {}, { type: 'token' }, { type: 'token', token: '' },
    { type: 'token', token: 5 }, { type: 'token', token: 'a\r\nX-Evil: 1' }, { type: 'token', token: 'a b' },
    { type: 'token', token: 'x'.repeat(16385) }, { type: 'no-token' }, { type: 'no-token', reason: 'other' },
    { type: 'no-token', reason: 'error', message: 1 }, { type: 'hello', embedgate: 1 }, { type: 'ready' },
    { type: 'TOKEN', token: 'a' }]) {
    assert.equal(isHostMessage(bad), false, JSON.stringify(bad));
  }
  assert.equal(isTokenString('a.b.c'), true);
});

test('isFrameMessage validates what the host accepts on its port', () => {
  for (const ok of [{ type: 'token-request' }, { type: 'ready' }, { type: 'signed-out' }, { type: 'forbidden' },
    { type: 'forbidden', message: 'm' }, { type: 'error', message: 'm' }]) {
    assert.equal(isFrameMessage(ok), true, JSON.stringify(ok));
  }
  for (const bad of [null, 'ready', {}, { type: 'error' }, { type: 'forbidden', message: 1 }, { type: 'token', token: 'x' },
    { type: 'hello', embedgate: 1 }, { type: 'sign-out' }]) {
    assert.equal(isFrameMessage(bad), false, JSON.stringify(bad));
  }
});

test('isHello / isAttach need the protocol version', () => {
  assert.equal(isHello({ embedgate: 1, type: 'hello' }), true);
  assert.equal(isHello({ embedgate: 2, type: 'hello' }), false);
  assert.equal(isHello({ type: 'hello' }), false);
  assert.equal(isHello({ embedgate: 1, type: 'attach' }), false);
  assert.equal(isAttach({ embedgate: 1, type: 'attach' }), true);
  assert.equal(isAttach({ embedgate: '1', type: 'attach' }), false);
  assert.equal(isAttach(null), false);
});

test('parseExpiry reads SessionResponse.expires_at and the data attribute', () => {
  assert.equal(parseExpiry({ expires_at: 1700000000 }), 1700000000);
  assert.equal(parseExpiry('1700000000'), 1700000000);
  assert.equal(parseExpiry(1700000000.5), 1700000000.5);
  for (const bad of [undefined, null, '', ' ', 'soon', 'NaN', 'Infinity', -1, 0, {}, { expires_at: '17' }, []]) {
    assert.equal(parseExpiry(bad), undefined, String(bad));
  }
});

test('renewDelay is 70% of the remaining life but at least 5 s before the end, 0 when over, capped for setTimeout', () => {
  const now = 1_700_000_000_000;
  assert.equal(renewDelay(now / 1000 + 300, now), 210_000);
  assert.equal(renewDelay(now / 1000 + 10, now), 5000, 'a 10 s session: renewed with 5 s to spare');
  assert.equal(renewDelay(now / 1000 + 4, now), 0, 'less than 5 s left: at once');
  assert.equal(renewDelay(now / 1000, now), 0);
  assert.equal(renewDelay(now / 1000 - 60, now), 0);
  assert.equal(renewDelay(now / 1000 + 90 * 86400, now), MAX_TIMER_MS);
  assert.equal(renewDelay(undefined, now), undefined);
  assert.equal(renewDelay(Number.NaN, now), undefined);
});
