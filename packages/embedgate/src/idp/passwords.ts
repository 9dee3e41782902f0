// Password hashing for IdP users: scrypt with a random salt, self-describing `scrypt$N$r$p$salt$hash` strings.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const N = 2 ** 15;
const R = 8;
const P = 1;
const SALT_BYTES = 16;
const KEY_BYTES = 32;

/** Bounds on parameters read back from a stored hash, so a tampered hash cannot make verification absurdly slow. */
const MIN_N = 2 ** 10;
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;
/** scrypt needs 128·N·r bytes; verification refuses hashes that would need more. */
const MAX_MEMORY = 256 * 1024 * 1024;
const MIN_SALT_BYTES = 8;
const MAX_SALT_BYTES = 64;
const MIN_KEY_BYTES = 16;
const MAX_KEY_BYTES = 64;

const DECIMAL = /^[1-9][0-9]{0,9}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

interface ScryptParams {
  n: number;
  r: number;
  p: number;
}

function derive(password: string, salt: Buffer, keyBytes: number, { n, r, p }: ScryptParams): Promise<Buffer> {
  // maxmem must exceed 128·N·r with some headroom (OpenSSL counts a little more than that).
  const options: ScryptOptions = { N: n, r, p, maxmem: 128 * n * r + 16 * 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, keyBytes, options, (error, key) => {
      if (error) reject(error);
      else resolve(key);
    });
  });
}

function encode(bytes: Buffer): string {
  return bytes.toString('base64url');
}

/** Strict base64url: Buffer.from() silently skips junk, so the result must re-encode to the same text. */
function decode(text: string): Buffer | undefined {
  if (!BASE64URL.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return encode(bytes) === text ? bytes : undefined;
}

function parseInteger(text: string): number | undefined {
  return DECIMAL.test(text) ? Number(text) : undefined;
}

interface ParsedHash extends ScryptParams {
  salt: Buffer;
  key: Buffer;
}

function parseHash(hash: string): ParsedHash | undefined {
  const parts = hash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const n = parseInteger(parts[1] ?? '');
  const r = parseInteger(parts[2] ?? '');
  const p = parseInteger(parts[3] ?? '');
  const salt = decode(parts[4] ?? '');
  const key = decode(parts[5] ?? '');
  if (n === undefined || r === undefined || p === undefined || !salt || !key) return undefined;
  if (n < MIN_N || n > MAX_N || (n & (n - 1)) !== 0) return undefined;
  if (r > MAX_R || p > MAX_P || 128 * n * r > MAX_MEMORY) return undefined;
  if (salt.length < MIN_SALT_BYTES || salt.length > MAX_SALT_BYTES) return undefined;
  if (key.length < MIN_KEY_BYTES || key.length > MAX_KEY_BYTES) return undefined;
  return { n, r, p, salt, key };
}

/** Hashes a password for storage (the password is NFC-normalized first, so equivalent Unicode input matches). */
export async function hashPassword(password: string): Promise<string> {
  if (typeof password !== 'string') throw new TypeError('password must be a string');
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, KEY_BYTES, { n: N, r: R, p: P });
  return `scrypt$${N}$${R}$${P}$${encode(salt)}$${encode(key)}`;
}

/** True when `password` matches `hash`; false for a wrong password or a malformed hash (never throws). */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  try {
    if (typeof password !== 'string' || typeof hash !== 'string') return false;
    const parsed = parseHash(hash);
    if (!parsed) return false;
    const key = await derive(password, parsed.salt, parsed.key.length, parsed);
    return timingSafeEqual(key, parsed.key);
  } catch {
    return false;
  }
}

/** A well-formed hash of no password at all (random key), with the default parameters. */
const DUMMY_HASH = `scrypt$${N}$${R}$${P}$${encode(randomBytes(SALT_BYTES))}$${encode(randomBytes(KEY_BYTES))}`;

/**
 * Does the work of one verification with the default parameters and always resolves false: call it for unknown
 * users so that response time does not reveal whether a username exists.
 */
export async function dummyVerify(password: string): Promise<false> {
  await verifyPassword(typeof password === 'string' ? password : '', DUMMY_HASH);
  return false;
}
