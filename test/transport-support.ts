// Whether this Node can run a transport: Node 22 cannot move a socket to another thread, so only the
// pipe runs there. Tests of every transport skip the others, saying why.
import type { ConcreteTransportName } from '../lib/protocol/messages.ts';

type Probe = () => Promise<string | undefined>;

const { probeHandoff } = (await import(new URL('../dist/lib/transports/handoff/probe.js', import.meta.url).href)) as {
  probeHandoff: Probe;
};
const { probeReuseport } = (await import(
  new URL('../dist/lib/transports/reuseport/probe.js', import.meta.url).href
)) as { probeReuseport: Probe };

export const allTransports = ['handoff', 'pipe', 'reuseport'] as const satisfies readonly ConcreteTransportName[];

const reasons: Record<ConcreteTransportName, string | undefined> = {
  handoff: await probeHandoff(),
  pipe: undefined,
  reuseport: await probeReuseport(),
};

/** A tap `skip` value: false where `transport` runs on this Node, otherwise why it cannot. */
export function skipUnlessSupported(transport: ConcreteTransportName): string | false {
  const reason = reasons[transport];
  return reason === undefined ? false : `${transport} cannot run on Node ${process.versions.node}: ${reason}`;
}
