// The IdP's token signing keys: created on first start, rotated on demand, old ones published until their tokens expire.
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { IdpStore, SigningKeyRecord } from './store/types.js';

const ALG = 'RS256';

async function newSigningKey(now: number): Promise<SigningKeyRecord> {
  const { privateKey } = await generateKeyPair(ALG, { modulusLength: 2048, extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, privateJwk: { ...jwk, kid, alg: ALG, use: 'sig' }, createdAt: now, retiredAt: undefined };
}

/** Makes sure at least one key exists (first start). */
export async function ensureSigningKey(store: IdpStore): Promise<void> {
  if ((await store.listSigningKeys()).length === 0) await store.addSigningKey(await newSigningKey(Date.now()));
}

/** Adds a new key that signs from now on; the previous one stays published. Returns the new kid. */
export async function rotateSigningKey(store: IdpStore): Promise<string> {
  const key = await newSigningKey(Date.now());
  await store.addSigningKey(key);
  return key.kid;
}

/**
 * The private JWKs for oidc-provider, newest (the signing key) first. Keys retired longer ago than
 * `keepRetiredMs` — the longest life of a token they signed — are deleted first.
 */
export async function activeSigningKeys(store: IdpStore, keepRetiredMs: number): Promise<JWK[]> {
  await store.pruneSigningKeys(Date.now() - keepRetiredMs);
  return (await store.listSigningKeys()).map((key) => key.privateJwk);
}
