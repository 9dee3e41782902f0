// Token verification per token, in process: embedgate's TokenVerifier uncached (cacheSize 0) and cached, next to a
// bare node:crypto.verify of the same RS256 signature. Slow calls are timed one by one (median, and mean: a busy
// machine gives them a long tail); cached calls in batches.
import { verify } from 'node:crypto';
import { pino } from 'pino';
import { parseConfig } from '../../packages/embedgate/src/config/load.js';
import { TokenVerifier } from '../../packages/embedgate/src/tokens/verifier.js';
import { AUDIENCE, type Issuer } from '../servers/issuer.js';
import { nsEachCall, nsPerAsyncCall } from './timing.js';

export interface VerificationFigures {
  /** Medians per call. */
  cryptoVerifyUs: number;
  uncachedUs: number;
  uncachedMeanUs: number;
  /** Mean per call over batches. */
  cachedUs: number;
}

async function readyVerifier(issuer: Issuer, cacheSize: number): Promise<TokenVerifier> {
  const { issuers } = parseConfig({
    public_url: 'http://127.0.0.1:1',
    issuers: [{ issuer: issuer.issuer, audiences: [AUDIENCE], algorithms: ['RS256'] }],
    apps: [{ name: 'a', prefix: '/a/', upstream: 'http://127.0.0.1:1', allow: { authenticated: true } }],
  });
  const verifier = new TokenVerifier({ issuers, maxTokenBytes: 8192, cacheSize, logger: pino({ level: 'silent' }) });
  verifier.start();
  const deadline = Date.now() + 10_000;
  while (!verifier.ready) {
    if (Date.now() > deadline) throw new Error('the verifier did not load the issuer keys');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return verifier;
}

export async function measureVerification(issuer: Issuer, ms: number): Promise<VerificationFigures> {
  const token = await issuer.sign();
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const signingInput = Buffer.from(`${header}.${payload}`);
  const signatureBytes = Buffer.from(signature, 'base64url');
  const uncached = await readyVerifier(issuer, 0);
  const cached = await readyVerifier(issuer, 10_000);
  try {
    await cached.verify(token);
    const bare = await nsEachCall(() => verify('RSA-SHA256', signingInput, issuer.publicKey, signatureBytes), ms);
    const uncachedNs = await nsEachCall(() => uncached.verify(token), ms);
    return {
      cryptoVerifyUs: bare.median / 1000,
      uncachedUs: uncachedNs.median / 1000,
      uncachedMeanUs: uncachedNs.mean / 1000,
      cachedUs: (await nsPerAsyncCall(() => cached.verify(token), ms)) / 1000,
    };
  } finally {
    uncached.stop();
    cached.stop();
  }
}
