import type { Logger } from 'streams-logger';
import type { BalancerName } from '../balancers/index.ts';
import { ERR_HANDOFF_UNSUPPORTED, ERR_REUSEPORT_UNSUPPORTED } from '../errors.ts';
import { probeHandoff } from '../transports/handoff/probe.ts';
import { Deliveries, type DeliverySettings, type Transport, type TransportName } from '../transports/index.ts';
import { MainThreadIntake } from '../transports/main-thread/main.ts';
import { ReuseportIntake, type ReuseportSettings } from '../transports/reuseport/main.ts';
import { probeReuseport } from '../transports/reuseport/probe.ts';

export interface TransportChoice {
  requested: TransportName;
  terminatesTls: boolean;
  proxyProtocol: boolean;
  balance: BalancerName;
  /** minWorkers equals maxWorkers: reuseport needs it, since the main thread does not see the load. */
  fixedPool: boolean;
  log: Logger;
}

/** Whether `auto` tries reuseport first, where it can run (see the README's Transports). */
export const AUTO_PREFERS_REUSEPORT = false;

/**
 * The transport to use, found and opened once at start-up: the main thread accepts and pipes, or moves
 * the sockets (hand-off); or the workers accept (reuseport), the main thread moving the few it accepts
 * meanwhile. Rejects when the one asked for cannot run here.
 */
export async function openTransport(
  choice: TransportChoice,
  settings: DeliverySettings,
  reuseport: () => ReuseportSettings,
): Promise<Transport> {
  const { requested, terminatesTls, proxyProtocol, balance, fixedPool, log } = choice;
  const mainThread = (name: 'handoff' | 'pipe'): Transport => ({
    name,
    intake: new MainThreadIntake(),
    deliveries: new Deliveries(name, settings),
  });
  if (requested === 'pipe' || (requested === 'auto' && terminatesTls)) return mainThread('pipe');
  // Sticking to a client behind a balancer needs the PROXY header read before the worker is
  // chosen, and only the pipe transport may read on the main thread.
  const stickyBehindBalancer = proxyProtocol && balance === 'ip-hash';
  if (requested === 'auto' && stickyBehindBalancer) {
    log.info('PROXY protocol with ip-hash: using the pipe transport, so that ip-hash sees the real client');
    return mainThread('pipe');
  }
  if (stickyBehindBalancer)
    log.warn(
      `With transport '${requested}', ip-hash balances on the PROXY header's sender, not on the client it names`,
    );
  if (requested === 'reuseport' || (requested === 'auto' && AUTO_PREFERS_REUSEPORT && fixedPool)) {
    let unavailable = await probeReuseport();
    if (!unavailable) {
      try {
        const intake = await ReuseportIntake.open(reuseport());
        return { name: 'reuseport', intake, deliveries: new Deliveries('handoff', settings) };
      } catch (err) {
        unavailable = `a second listener cannot join the server's port; is it listening with reusePort: true? (${(err as Error).message})`;
      }
    }
    if (requested === 'reuseport') throw new ERR_REUSEPORT_UNSUPPORTED(unavailable);
    log.debug(`The reuseport transport is unavailable (${unavailable})`);
  }
  const unsupported = await probeHandoff();
  if (!unsupported) return mainThread('handoff');
  if (requested === 'auto') {
    log.debug(`Socket hand-off is unavailable (${unsupported}); using the pipe transport`);
    return mainThread('pipe');
  }
  throw new ERR_HANDOFF_UNSUPPORTED(`this runtime cannot move sockets between threads (${unsupported})`);
}
