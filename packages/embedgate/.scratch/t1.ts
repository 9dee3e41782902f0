import { startHostileOp } from '../test/support/hostile-op.js';
import { FlattenedSign, generateKeyPair, exportJWK, compactVerify, createLocalJWKSet } from 'jose';
const op = await startHostileOp();
const claims = op.claims();
const b64 = Buffer.from(JSON.stringify(claims)).toString('base64url');
const jws = await new FlattenedSign(new TextEncoder().encode(b64)).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1', b64: false, crit: ['b64'] }).sign(op.keys.rsa.privateKey);
const tok = `${jws.protected}.${jws.payload}.${jws.signature}`;
console.log(tok.split('.').map(s => s.slice(0, 30)));
// ignoring b64 -> does a normal verify with a header-stripped variant accept? 
try { await compactVerify(tok, createLocalJWKSet({ keys: [op.keys.rsa.publicJwk] }), {crit: {}}); console.log('jose compactVerify OK'); } catch (e) { console.log('err', (e as Error).message); }
const atk = await generateKeyPair('RS256', { extractable: true });
const t2 = await op.sign(claims, { key: atk.privateKey, header: { jwk: await exportJWK(atk.publicKey) } });
console.log(t2.length);
const t3 = await op.sign(claims, { header: { crit: ['exp'], exp: 1 } });
console.log(t3.length);
await op.close();
