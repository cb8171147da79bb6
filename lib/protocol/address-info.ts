import net from 'node:net';

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

/** Whether `address` (an IPv4 client's mapped form included) is in `trusted`; no address is not. */
export function isTrusted(trusted: net.BlockList, address: string | undefined): boolean {
  if (!address) return false;
  const canonical = canonicalAddress(address);
  return trusted.check(canonical, net.isIPv6(canonical) ? 'ipv6' : 'ipv4');
}

/**
 * The key one client is counted and balanced by: its IPv4 address in dotted form, or for IPv6 the
 * network of its first `ipv6PrefixBits` bits, as `2001:db8:1:2::/64`, since one IPv6 client
 * usually holds a whole /64. 128 keys each IPv6 address on its own.
 */
export function clientKey(address: string, ipv6PrefixBits: number): string {
  const canonical = canonicalAddress(address);
  if (ipv6PrefixBits >= 128 || !canonical.includes(':')) return canonical;
  const groups = ipv6Groups(canonical);
  if (!groups) return canonical;
  const masked = groups.map((group, i) => {
    const bits = Math.min(16, Math.max(0, ipv6PrefixBits - 16 * i));
    return group & (0xffff << (16 - bits)) & 0xffff;
  });
  const kept = masked.slice(0, Math.ceil(ipv6PrefixBits / 16));
  const suffix = kept.length < 8 ? '::' : '';
  return `${kept.map((group) => group.toString(16)).join(':')}${suffix}/${ipv6PrefixBits}`;
}

/** The eight 16-bit groups of an IPv6 address, or undefined if it is not one. */
function ipv6Groups(address: string): number[] | undefined {
  const zone = address.indexOf('%');
  const bare = zone === -1 ? address : address.slice(0, zone);
  if (!net.isIPv6(bare)) return undefined;
  const [head = '', tail] = bare.split('::');
  const parse = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((group) => {
          if (!group.includes('.')) return [parseInt(group, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const first = parse(head);
  const last = tail === undefined ? [] : parse(tail);
  return [...first, ...Array<number>(8 - first.length - last.length).fill(0), ...last];
}

/** The address a connection came from, as limits and balancers key it. */
export function peerKey(socket: net.Socket, ipv6PrefixBits = 128): string {
  return clientKey(socket.remoteAddress ?? '', ipv6PrefixBits);
}
