import type net from 'node:net';
import { kAddressInfo, type AddressInfoCarrier, isTrusted } from '../protocol/address-info.ts';
import { readPrefix } from '../protocol/read-prefix.ts';
import { parseProxyHeader } from './parser.ts';

export interface ProxyProtocolSettings {
  timeout: number;
  /** Undefined when any peer may send a header. */
  trusted: net.BlockList | undefined;
}

/**
 * The main thread's part of the PROXY protocol: it turns away peers that may not send headers and,
 * where the main thread may read a connection (the pipe transport), reads the header before a worker
 * is chosen, so that the balancer sees the client it names.
 */
export class ProxyHeaderGate {
  readonly #settings: ProxyProtocolSettings;
  readonly #read = new WeakSet<net.Socket>();

  constructor(settings: ProxyProtocolSettings) {
    this.#settings = settings;
  }

  /** Why the peer may not send PROXY headers, or undefined when it may. */
  distrust(socket: net.Socket): string | undefined {
    const { trusted } = this.#settings;
    if (!trusted || isTrusted(trusted, socket.remoteAddress)) return undefined;
    return `${socket.remoteAddress} is not in proxyProtocolFrom`;
  }

  /**
   * Reads the header once per connection and keeps the client it names on the socket. Calls `done`
   * with the reason when there is no valid header.
   */
  read(socket: net.Socket, done: (rejection: string | undefined) => void): void {
    if (this.#read.has(socket)) {
      done(undefined);
      return;
    }
    this.#read.add(socket);
    readPrefix(socket, parseProxyHeader, this.#settings.timeout, (outcome) => {
      if (outcome.status === 'invalid') {
        done(outcome.reason);
        return;
      }
      if (outcome.info) (socket as AddressInfoCarrier)[kAddressInfo] = outcome.info;
      done(undefined);
    });
  }
}
