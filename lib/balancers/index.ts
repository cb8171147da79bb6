import { LeastConnectionsBalancer } from './least-connections.ts';
import { RoundRobinBalancer } from './round-robin.ts';
import { IpHashBalancer } from './ip-hash.ts';
import { LeastLoadedBalancer } from './least-loaded.ts';
import type net from 'node:net';
import type { Balancer, BalancerName } from './balancer.ts';

export { balancerNames, type Balancer, type BalancerCandidate, type BalancerName } from './balancer.ts';

/**
 * `ipv6PrefixBits`: ip-hash keys an IPv6 client by its network of this many bits; `trustProxy`: the
 * reverse proxies whose connections ip-hash does not key (their requests are routed one by one).
 */
export function createBalancer(name: BalancerName, ipv6PrefixBits = 64, trustProxy?: net.BlockList): Balancer {
  switch (name) {
    case 'least-connections':
      return new LeastConnectionsBalancer();
    case 'round-robin':
      return new RoundRobinBalancer();
    case 'ip-hash':
      return new IpHashBalancer(ipv6PrefixBits, trustProxy);
    case 'least-loaded':
      return new LeastLoadedBalancer();
  }
}
