// Sealed values for the browser and the session store (login transactions, refresh and ID tokens): JWE with
// direct AES-256-GCM (jose), under a key derived from login.encryption_key, with an expiry of their own.
import { hkdfSync } from 'node:crypto';
import { EncryptJWT, jwtDecrypt, type JWTPayload } from 'jose';

export class Sealer {
  private readonly key: Uint8Array;

  constructor(secret: string, purpose: string) {
    this.key = new Uint8Array(hkdfSync('sha256', Buffer.from(secret, 'base64'), Buffer.alloc(0), `embedgate ${purpose}`, 32));
  }

  seal(payload: JWTPayload, ttlSeconds: number): Promise<string> {
    return new EncryptJWT(payload).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).setIssuedAt()
      .setExpirationTime(`${ttlSeconds}s`).encrypt(this.key);
  }

  /** The payload, or undefined for anything not sealed by this key, tampered with or expired. */
  async open(value: string): Promise<JWTPayload | undefined> {
    try {
      return (await jwtDecrypt(value, this.key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] })).payload;
    } catch {
      return undefined;
    }
  }
}
