import type net from 'node:net';
import { canonicalAddress, clientKey, isTrusted, storedAddressInfo } from '../protocol/address-info.ts';
import type { Balancer, BalancerCandidate } from './balancer.ts';
import { LeastConnectionsBalancer } from './least-connections.ts';

// Rendezvous (highest random weight) hashing: each client address ranks every worker slot, and the
// top-ranked live worker wins. When a worker comes or goes, only the clients it ranked first move;
// a replacement takes over its slot, and with it the same clients.
// The client is the one a PROXY header named, where the header was read before dispatch.
// An IPv6 client is keyed by its network, as the per-address limit counts it.
// A connection from a trusted reverse proxy carries many clients' requests, which the workers route
// one by one (see worker/sessions.ts): keyed on the proxy, every one would land on one worker, so
// such connections go to the worker with fewest connections.
export class IpHashBalancer implements Balancer {
  readonly #ipv6PrefixBits: number;
  readonly #trustProxy: net.BlockList | undefined;
  readonly #proxied = new LeastConnectionsBalancer();

  constructor(ipv6PrefixBits: number, trustProxy?: net.BlockList) {
    this.#ipv6PrefixBits = ipv6PrefixBits;
    this.#trustProxy = trustProxy;
  }

  pick<T extends BalancerCandidate>(candidates: readonly T[], socket: net.Socket): T | undefined {
    const client = canonicalAddress(storedAddressInfo(socket)?.remote.address ?? socket.remoteAddress ?? '');
    if (this.#trustProxy && isTrusted(this.#trustProxy, client)) return this.#proxied.pick(candidates);
    return pickByKey(candidates, clientKey(client, this.#ipv6PrefixBits));
  }
}

export function pickByKey<T extends Pick<BalancerCandidate, 'slot'>>(
  candidates: readonly T[],
  key: string,
): T | undefined {
  const keyHash = fnv1a(key);
  let best: T | undefined;
  let bestScore = -1;
  for (const candidate of candidates) {
    const score = mix(keyHash ^ Math.imul(candidate.slot + 1, 0x9e3779b1));
    if (score > bestScore) {
      bestScore = score;
      best = candidate;
    }
  }
  return best;
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

// murmur3's finalizer: spreads every input bit across the output so scores are independent.
function mix(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
