import { KeyObject, createPrivateKey, X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { CompactSign, CompactEncrypt, generateKeyPair } from 'jose';
const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
const ko = KeyObject.from(privateKey);
for (const alg of ['RS384', 'RS512', 'PS256']) {
  try { const t = await new CompactSign(Buffer.from('{}')).setProtectedHeader({ alg }).sign(ko); console.log(alg, 'ok', t.length); } catch (e) { console.log(alg, (e as Error).message); }
}
try { const t = await new CompactEncrypt(Buffer.from('{}')).setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM' }).encrypt(KeyObject.from(publicKey)); console.log('jwe ok', t.split('.').length); } catch (e) { console.log('jwe', (e as Error).message); }
const pem = execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', '-', '-subj', '/CN=attacker.example', '-days', '1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
const key = createPrivateKey(pem);
const cert = new X509Certificate(pem);
console.log(key.asymmetricKeyType, cert.subject, cert.publicKey.equals(KeyObject.from(key.asymmetricKeyType ? (await import('node:crypto')).createPublicKey(key) : key)));
