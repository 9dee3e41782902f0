// Password hashing for IdP users: scrypt round trip, random salts, no clear text, malformed or hostile hashes refused.
import assert from 'node:assert/strict';
import { randomBytes, scryptSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { dummyVerify, hashPassword, verifyPassword } from '../src/idp/passwords.js';

const FORMAT = /^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/;

describe('passwords', () => {
  it('hashes to scrypt$N$r$p$salt$hash and verifies the same password', async () => {
    const hash = await hashPassword('correct horse battery staple');
    assert.match(hash, FORMAT);
    assert.equal(await verifyPassword('correct horse battery staple', hash), true);
  });

  it('rejects a wrong password', async () => {
    const hash = await hashPassword('s3cret!');
    for (const wrong of ['s3cret', 's3cret!!', 'S3cret!', '', ' s3cret!', 's3cret! ']) {
      assert.equal(await verifyPassword(wrong, hash), false, JSON.stringify(wrong));
    }
  });

  it('uses a fresh salt for every hash', async () => {
    const [a, b] = await Promise.all([hashPassword('same'), hashPassword('same')]);
    assert.notEqual(a, b);
    assert.notEqual(a.split('$')[4], b.split('$')[4]);
    assert.equal(await verifyPassword('same', a), true);
    assert.equal(await verifyPassword('same', b), true);
  });

  it('never contains the password in clear or in a trivial encoding', async () => {
    const password = 'Tr0ub4dor&3-very-recognisable';
    const hash = await hashPassword(password);
    const bytes = Buffer.from(password);
    for (const encoded of [password, bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex')]) {
      assert.equal(hash.includes(encoded), false, encoded);
    }
    assert.equal(hash.toLowerCase().includes('tr0ub4dor'), false);
  });

  it('treats canonically equivalent Unicode passwords as the same password', async () => {
    const composed = 'caf\u00e9';
    const decomposed = 'cafe\u0301';
    assert.equal(await verifyPassword(decomposed, await hashPassword(composed)), true);
    assert.equal(await verifyPassword('cafe', await hashPassword(composed)), false);
  });

  it('reads N, r and p from the stored hash', async () => {
    const salt = randomBytes(16);
    const key = scryptSync('legacy', salt, 32, { N: 1024, r: 4, p: 2 });
    const hash = `scrypt$1024$4$2$${salt.toString('base64url')}$${key.toString('base64url')}`;
    assert.equal(await verifyPassword('legacy', hash), true);
    assert.equal(await verifyPassword('legacy!', hash), false);
  });

  it('returns false, without throwing, for malformed hashes', async () => {
    const good = await hashPassword('pw');
    const [, n, r, p, salt, key] = good.split('$') as [string, string, string, string, string, string];
    const malformed = [
      '',
      'scrypt',
      'pw',
      '$$$$$',
      `bcrypt$${n}$${r}$${p}$${salt}$${key}`,
      `scrypt$${n}$${r}$${p}$${salt}`,
      `scrypt$${n}$${r}$${p}$${salt}$${key}$extra`,
      `scrypt$${n}$${r}$${p}$${salt}$`,
      `scrypt$${n}$${r}$${p}$$${key}`,
      `scrypt$abc$${r}$${p}$${salt}$${key}`,
      `scrypt$0${n}$${r}$${p}$${salt}$${key}`,
      `scrypt$-${n}$${r}$${p}$${salt}$${key}`,
      `scrypt$${n}.0$${r}$${p}$${salt}$${key}`,
      `scrypt$1e5$${r}$${p}$${salt}$${key}`,
      `scrypt$32767$${r}$${p}$${salt}$${key}`, // not a power of two
      `scrypt$2$${r}$${p}$${salt}$${key}`, // too weak to accept
      `scrypt$${n}$0$${p}$${salt}$${key}`,
      `scrypt$${n}$${r}$0$${salt}$${key}`,
      `scrypt$${n}$${r}$${p}$${salt}!$${key}`,
      `scrypt$${n}$${r}$${p}$${salt}$${key}=`,
      // 42 characters whose last one has bits set past the final byte: not canonical base64url
      `scrypt$${n}$${r}$${p}$${salt}$${key.slice(0, -2)}_`,
      `scrypt$${n}$${r}$${p}$AAAA$${key}`, // salt too short
      `scrypt$${n}$${r}$${p}$${salt}$AAAAAAAA`, // key too short
      ` ${good}`,
      `${good}\n`,
      good.toUpperCase(),
    ];
    for (const hash of malformed) {
      assert.equal(await verifyPassword('pw', hash), false, JSON.stringify(hash));
    }
    assert.equal(await verifyPassword('pw', undefined as unknown as string), false);
    assert.equal(await verifyPassword('pw', null as unknown as string), false);
    assert.equal(await verifyPassword(undefined as unknown as string, good), false);
    assert.equal(await verifyPassword('pw', good), true, 'the unmodified hash still verifies');
  });

  it('refuses absurd cost parameters instead of spending memory and time on them', async () => {
    const salt = randomBytes(16).toString('base64url');
    const key = randomBytes(32).toString('base64url');
    for (const [n, r, p] of [
      [2 ** 30, 8, 1],
      [2 ** 22, 8, 1],
      [2 ** 20, 1024, 1],
      [2 ** 15, 8, 1_000_000],
    ] as const) {
      const started = performance.now();
      assert.equal(await verifyPassword('pw', `scrypt$${n}$${r}$${p}$${salt}$${key}`), false);
      assert.ok(performance.now() - started < 50, `N=${n} r=${r} p=${p} refused without computing`);
    }
  });

  it('dummyVerify always resolves false and costs about as much as a real verification', async () => {
    const hash = await hashPassword('pw');
    assert.equal(await dummyVerify('pw'), false);
    assert.equal(await dummyVerify(''), false);
    const time = async (work: () => Promise<unknown>) => {
      const started = performance.now();
      await work();
      return performance.now() - started;
    };
    const real: number[] = [];
    const dummy: number[] = [];
    for (let i = 0; i < 3; i++) {
      real.push(await time(() => verifyPassword('wrong', hash)));
      dummy.push(await time(() => dummyVerify('wrong')));
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[1]!;
    const ratio = median(dummy) / median(real);
    assert.ok(ratio > 0.5 && ratio < 2, `dummy/real time ratio ${ratio.toFixed(2)}`);
  });
});
