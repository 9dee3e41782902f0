// Unit tests of request-target normalization (src/http/path.ts) and path globs (src/policy/glob.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeTarget } from '../src/http/path.js';
import { compileGlob, compileGlobs } from '../src/policy/glob.js';

describe('normalizeTarget: accepted targets', () => {
  // [request target, normalized path, query, security case]
  const accepted: Array<[string, string, string, number?]> = [
    ['/', '/', ''],
    ['/sales/', '/sales/', ''],
    ['/sales', '/sales', ''],
    ['/%61dmin', '/admin', ''],
    ['/sales/%7Euser/%2d%2E%5f', '/sales/~user/-._', ''],
    ['/a%20b', '/a%20b', ''],
    ['/100%25', '/100%25', ''],
    ['/%c3%a9t%c3%a9', '/%C3%A9t%C3%A9', ''],
    ['/ADMIN', '/ADMIN', '', 75],
    ['/admin%20', '/admin%20', '', 75],
    ['//admin', '/admin', '', 75],
    ['//evil.example/x', '/evil.example/x', ''],
    ['/a//b///c', '/a/b/c', ''],
    ['/sales//', '/sales/', ''],
    ['/a/.../b', '/a/.../b', ''],
    ['/a?b=1', '/a', '?b=1'],
    ['/?', '/', '?'],
    ['/public?path=/admin', '/public', '?path=/admin', 73],
    ['/api/private/sensitive?path=/status', '/api/private/sensitive', '?path=/status', 73],
    ['/admin?x=/_embedgate/auth', '/admin', '?x=/_embedgate/auth', 76],
    ['/admin?x=/../%2F;#frag\\', '/admin', '?x=/../%2F;#frag\\'],
    ['/%61?%61', '/a', '?%61'],
  ];
  for (const [target, path, query, securityCase] of accepted) {
    it(`${securityCase === undefined ? '' : `${securityCase}: `}${target} → path ${path}, query "${query}"`, () => {
      assert.deepEqual(normalizeTarget(target), { ok: true, path, query });
    });
  }

  it('accepts a target of exactly 8192 characters', () => {
    const target = `/${'a'.repeat(8191)}`;
    assert.deepEqual(normalizeTarget(target), { ok: true, path: target, query: '' });
  });
});

describe('normalizeTarget: refused targets', () => {
  const refused: Array<[string, 'invalid_path' | 'ambiguous_path' | 'uri_too_long']> = [
    // encoded "#" and "?" would end the path for an upstream that decodes first (case 74); double encoding
    // becomes ".." for an upstream that decodes twice (case 75)
    ['/foo/secret%23/bar', 'ambiguous_path'],
    ['/a%3fb', 'ambiguous_path'],
    ['/%252e%252e/admin', 'ambiguous_path'],
    ['/a%252Fb', 'ambiguous_path'],
    // encoded "/", "\", NUL, control characters and ";"
    ['/public%2F..%2Fadmin', 'ambiguous_path'],
    ['/a%2fb', 'ambiguous_path'],
    ['/public/..%5Cadmin', 'ambiguous_path'],
    ['/a%5cb', 'ambiguous_path'],
    ['/a%00b', 'ambiguous_path'],
    ['/a%0d%0aSet-Cookie:x', 'ambiguous_path'],
    ['/a%7f', 'ambiguous_path'],
    ['/a%3Bx=y', 'ambiguous_path'],
    ['/admin;x=y', 'ambiguous_path'],
    // dot segments, raw and encoded
    ['/public/../admin', 'ambiguous_path'],
    ['/a/./b', 'ambiguous_path'],
    ['/admin/.', 'ambiguous_path'],
    ['/admin/..', 'ambiguous_path'],
    ['/public/%2e%2e/admin', 'ambiguous_path'],
    ['/public/%2E%2E/admin', 'ambiguous_path'],
    ['/public/.%2e/admin', 'ambiguous_path'],
    ['/admin/%2e', 'ambiguous_path'],
    // characters that may not appear raw in a path, and broken escapes
    ['/admin#foo', 'invalid_path'],
    ['/a\\b', 'invalid_path'],
    ['/public/..\\admin', 'invalid_path'],
    ['/a b', 'invalid_path'],
    ['/a\tb', 'invalid_path'],
    ['/é', 'invalid_path'],
    ['/a%zz', 'invalid_path'],
    ['/a%2', 'invalid_path'],
    // not origin-form
    ['', 'invalid_path'],
    ['*', 'invalid_path'],
    ['http://evil.example/admin', 'invalid_path'],
    ['evil.example:443', 'invalid_path'],
    ['admin', 'invalid_path'],
    // longer than 8 KB, even when the excess is in the query
    [`/${'a'.repeat(8192)}`, 'uri_too_long'],
    [`/a?${'q'.repeat(8190)}`, 'uri_too_long'],
  ];
  for (const [target, reason] of refused) {
    const label = target.length > 40 ? `${target.slice(0, 12)}… (${target.length} chars)` : JSON.stringify(target);
    it(`75: ${label} → ${reason}`, () => {
      const result = normalizeTarget(target);
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.reason, reason);
    });
  }
});

describe('path globs', () => {
  // [glob, paths it matches, paths it does not match]
  const globs: Array<[string, string[], string[]]> = [
    ['/sales/assets/*', ['/sales/assets/app.js', '/sales/assets/a.b.css'], ['/sales/assets/img/logo.png', '/sales/assets', '/sales/assetsX/app.js']],
    // `*` needs a non-empty segment: a public `/sales/*` must not open the index page `/sales/`
    ['/sales/*', ['/sales/app.js'], ['/sales/', '/sales']],
    ['/sales/assets/**', ['/sales/assets/app.js', '/sales/assets/img/logo.png', '/sales/assets/a/b/c/d'], ['/sales/assets', '/sales/assetsX/app.js', '/x/sales/assets/app.js', '/sales/admin']],
    ['/sales/*/report', ['/sales/2024/report'], ['/sales/2024/q1/report', '/sales/report', '/sales/2024/report/x']],
    ['/sales/**/report', ['/sales/2024/report', '/sales/2024/q1/report'], ['/sales/report/x']],
    ['/sales/*.js', ['/sales/app.js'], ['/sales/lib/app.js', '/sales/app.jsx', '/sales/app.json']],
    ['/sales/healthz', ['/sales/healthz'], ['/sales/healthz/', '/sales/healthzz', '/x/sales/healthz', '/sales']],
    // regex metacharacters are literal
    ['/a.b/', ['/a.b/'], ['/axb/']],
    ['/a+b', ['/a+b'], ['/aab', '/ab']],
    ['/a?b', ['/a?b'], ['/ab', '/b']],
    ['/(x|y)', ['/(x|y)'], ['/x', '/y']],
    ['/[ab]', ['/[ab]'], ['/a', '/b']],
    ['/a{2}', ['/a{2}'], ['/aa']],
    ['/^a$', ['/^a$'], ['/a']],
    ['/a\\d', ['/a\\d'], ['/a1']],
  ];
  for (const [glob, matching, other] of globs) {
    it(`${glob} matches ${matching.join(', ')} and not ${other.join(', ')}`, () => {
      const regex = compileGlob(glob);
      for (const path of matching) assert.ok(regex.test(path), `${glob} should match ${path}`);
      for (const path of other) assert.ok(!regex.test(path), `${glob} should not match ${path}`);
    });
  }

  it('a combined matcher keeps every glob anchored', () => {
    const isPublic = compileGlobs(['/sales/assets/**', '/sales/favicon.ico']);
    assert.ok(isPublic('/sales/assets/app.js'));
    assert.ok(isPublic('/sales/favicon.ico'));
    for (const path of ['/sales/', '/sales/favicon.ico/x', '/x/sales/favicon.ico', '/sales/admin', '/sales/assets']) {
      assert.ok(!isPublic(path), path);
    }
  });

  it('no globs match nothing', () => {
    const isPublic = compileGlobs([]);
    assert.ok(!isPublic('/'));
    assert.ok(!isPublic('/sales/assets/app.js'));
  });
});
