import type { ConcreteTransportName } from '../protocol/messages.ts';
import { HandoffTransport } from './handoff/main.ts';
import { PipeTransport } from './pipe/main.ts';
import type { Transport, TransportSettings } from './transport.ts';

export * from './transport.ts';

export function createTransport(name: ConcreteTransportName, settings: TransportSettings): Transport {
  return name === 'handoff' ? new HandoffTransport(settings) : new PipeTransport(settings);
}
