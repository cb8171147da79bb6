import type net from 'node:net';

export interface SocketAddress {
  address: string;
  family: string;
  port: number;
}

/** Both ends of the client-to-proxy connection: `remote` is the client, `local` the proxy. */
export interface ProxySocketAddressInfo {
  local: SocketAddress;
  remote: SocketAddress;
}

export const kAddressInfo = Symbol.for('socketnaut.addressInfo');

export interface AddressInfoCarrier {
  [kAddressInfo]?: ProxySocketAddressInfo;
  _parent?: AddressInfoCarrier | null;
}

export function addressInfoOf(socket: net.Socket): ProxySocketAddressInfo | undefined {
  if (socket.remoteAddress === undefined) return undefined;
  return {
    local: { address: socket.localAddress ?? '', family: socket.localFamily ?? '', port: socket.localPort ?? 0 },
    remote: { address: socket.remoteAddress, family: socket.remoteFamily ?? '', port: socket.remotePort ?? 0 },
  };
}

/**
 * The info stored on a socket by a transport. A TLS server wraps the socket it is given, so the
 * wrapper's `_parent` is looked at too.
 */
export function storedAddressInfo(socket: object): ProxySocketAddressInfo | undefined {
  const carrier = socket as AddressInfoCarrier;
  return carrier[kAddressInfo] ?? carrier._parent?.[kAddressInfo];
}

const IPV4_MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/**
 * One form for one client: an IPv4 client in dotted form, even as a dual-stack socket reports it
 * (`::ffff:10.0.0.1` → `10.0.0.1`). Anything else is returned as it is.
 */
export function canonicalAddress(address: string): string {
  return IPV4_MAPPED.exec(address)?.[1] ?? address;
}

/** The address a connection came from, as limits and balancers key it. */
export function peerKey(socket: net.Socket): string {
  return canonicalAddress(socket.remoteAddress ?? '');
}
