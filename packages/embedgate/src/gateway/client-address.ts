// Who sent a request and how it arrived, believing X-Forwarded-* only from configured trusted proxies.
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';

export interface ClientAddress {
  /** The client's IP: the peer, or the nearest untrusted hop named by trusted proxies. */
  ip: string;
  proto: 'http' | 'https';
  host: string;
  /** The X-Forwarded-For chain to send upstream. */
  forwardedFor: string;
  /** True when the direct peer is a trusted proxy. */
  viaTrustedProxy: boolean;
}

export class TrustedProxies {
  private readonly list = new BlockList();
  private readonly empty: boolean;

  constructor(cidrs: string[]) {
    this.empty = cidrs.length === 0;
    for (const entry of cidrs) {
      const [address, bits] = entry.split('/') as [string, string | undefined];
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.list.addAddress(address, family);
      else this.list.addSubnet(address, Number(bits), family);
    }
  }

  trusts(ip: string): boolean {
    if (this.empty || ip === '') return false;
    const plain = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
    return this.list.check(plain, isIP(plain) === 6 ? 'ipv6' : 'ipv4');
  }

  resolve(req: IncomingMessage): ClientAddress {
    const peer = req.socket.remoteAddress ?? '';
    const ownProto = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
    const host = req.headers.host ?? '';
    if (!this.trusts(peer)) {
      return { ip: peer, proto: ownProto, host, forwardedFor: peer, viaTrustedProxy: false };
    }
    const chain = String(req.headers['x-forwarded-for'] ?? '').split(',').map((s) => s.trim()).filter((s) => isIP(s) !== 0);
    let ip = peer;
    for (let i = chain.length - 1; i >= 0; i--) {
      ip = chain[i] as string;
      if (!this.trusts(ip)) break;
    }
    const proto = req.headers['x-forwarded-proto'] === 'https' ? 'https' : req.headers['x-forwarded-proto'] === 'http' ? 'http' : ownProto;
    const forwardedHost = req.headers['x-forwarded-host'];
    return {
      ip,
      proto,
      host: typeof forwardedHost === 'string' && forwardedHost !== '' ? forwardedHost : host,
      forwardedFor: [...chain, peer].join(', '),
      viaTrustedProxy: true,
    };
  }
}
