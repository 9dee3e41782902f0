// A throwaway certificate authority and a server certificate for https://localhost and https://127.0.0.1, made with
// the openssl CLI in a temp dir, so the engine tests can serve real HTTPS (Secure and Partitioned cookies, service
// workers) from node:https without any certificate that outlives the test.
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestTls {
  /** The CA certificate (PEM): what a browser or client would trust. */
  caPem: string;
  /** The server certificate (PEM) for DNS:localhost and IP:127.0.0.1, signed by the CA. */
  certPem: string;
  /** The server certificate's private key (PEM). */
  keyPem: string;
  /** base64 SHA-256 of the server certificate's SubjectPublicKeyInfo (Chromium's --ignore-certificate-errors-spki-list). */
  spkiSha256: string;
  /** caPem as a file, e.g. for NODE_EXTRA_CA_CERTS or curl --cacert. */
  caFile: string;
  /** The temp dir holding every file; removed by cleanup(). */
  dir: string;
  cleanup(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Makes the CA and the server certificate (P-256 keys, valid for 2 days). Synchronous; takes a few ms. */
export function makeTestTls(): TestTls {
  const dir = mkdtempSync(join(tmpdir(), 'embedgate-tls-'));
  try {
    openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
    openssl(dir, [
      'req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '2', '-subj', '/CN=embedgate throwaway test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.pem',
    ]);
    openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'server.key']);
    openssl(dir, ['req', '-new', '-key', 'server.key', '-subj', '/CN=localhost', '-out', 'server.csr']);
    writeFileSync(join(dir, 'server.ext'), [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '',
    ].join('\n'));
    openssl(dir, [
      'x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-sha256', '-days', '2',
      '-extfile', 'server.ext', '-out', 'server.pem',
    ]);
    // PKCS#8, the form every TLS stack reads.
    openssl(dir, ['pkcs8', '-topk8', '-nocrypt', '-in', 'server.key', '-out', 'server.pk8']);
    const certPem = readFileSync(join(dir, 'server.pem'), 'utf8');
    const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
    return {
      caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
      certPem,
      spkiSha256: createHash('sha256').update(spki).digest('base64'),
      keyPem: readFileSync(join(dir, 'server.pk8'), 'utf8'),
      caFile: join(dir, 'ca.pem'),
      dir,
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
