import type { Logger } from 'streams-logger';
import type { BalancerName } from '../balancers/index.ts';
import { ERR_HANDOFF_UNSUPPORTED } from '../errors.ts';
import type { ConcreteTransportName } from '../protocol/messages.ts';
import { probeHandoff } from '../transports/handoff/probe.ts';
import type { TransportName } from '../transports/index.ts';

export interface TransportChoice {
  requested: TransportName;
  terminatesTls: boolean;
  proxyProtocol: boolean;
  balance: BalancerName;
  log: Logger;
}

/** The transport to use, found once at start-up; rejects when the one asked for cannot run here. */
export async function chooseTransport({ requested, terminatesTls, proxyProtocol, balance, log }: TransportChoice): Promise<ConcreteTransportName> {
  if (requested === 'pipe' || (requested === 'auto' && terminatesTls)) return 'pipe';
  // Sticking to a client behind a balancer needs the PROXY header read before the worker is
  // chosen, and only the pipe transport may read on the main thread.
  const stickyBehindBalancer = proxyProtocol && balance === 'ip-hash';
  if (requested === 'auto' && stickyBehindBalancer) {
    log.info('PROXY protocol with ip-hash: using the pipe transport, so that ip-hash sees the real client');
    return 'pipe';
  }
  if (stickyBehindBalancer) log.warn("With transport 'handoff', ip-hash balances on the PROXY header's sender, not on the client it names");
  const unsupported = await probeHandoff();
  if (!unsupported) return 'handoff';
  if (requested === 'auto') {
    log.debug(`Socket hand-off is unavailable (${unsupported}); using the pipe transport`);
    return 'pipe';
  }
  throw new ERR_HANDOFF_UNSUPPORTED(`this runtime cannot move sockets between threads (${unsupported})`);
}
