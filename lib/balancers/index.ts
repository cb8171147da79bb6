import { LeastConnectionsBalancer } from './least-connections.ts';
import { RoundRobinBalancer } from './round-robin.ts';
import { IpHashBalancer } from './ip-hash.ts';
import { LeastLoadedBalancer } from './least-loaded.ts';
import type { Balancer, BalancerName } from './balancer.ts';

export { balancerNames, type Balancer, type BalancerCandidate, type BalancerName } from './balancer.ts';

/** `ipv6PrefixBits`: ip-hash keys an IPv6 client by its network of this many bits. */
export function createBalancer(name: BalancerName, ipv6PrefixBits = 64): Balancer {
  switch (name) {
    case 'least-connections':
      return new LeastConnectionsBalancer();
    case 'round-robin':
      return new RoundRobinBalancer();
    case 'ip-hash':
      return new IpHashBalancer(ipv6PrefixBits);
    case 'least-loaded':
      return new LeastLoadedBalancer();
  }
}
