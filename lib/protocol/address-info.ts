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
