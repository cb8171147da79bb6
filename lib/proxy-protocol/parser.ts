import net from 'node:net';
import type { ProxySocketAddressInfo } from '../protocol/address-info.ts';

// The PROXY protocol, versions 1 and 2, as HAProxy specifies it: an upstream balancer opens each
// connection with a header naming the client it accepted. Only the header is read here; what follows
// it is the client's own data.

const V1_PREFIX = Buffer.from('PROXY ');
/** A v1 header, CRLF included, is at most 107 bytes. */
export const V1_MAX_BYTES = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED_BYTES = 16;
/** Addresses plus room for TLVs; a balancer's headers are far smaller. */
export const V2_MAX_BYTES = V2_FIXED_BYTES + 2048;

export type ProxyHeader =
  | { status: 'incomplete' }
  | { status: 'invalid'; reason: string }
  /** `info` is undefined for LOCAL (v2) and UNKNOWN (v1): the connection's own addresses then stand. */
  | { status: 'ok'; length: number; info: ProxySocketAddressInfo | undefined };

const INCOMPLETE: ProxyHeader = { status: 'incomplete' };

function invalid(reason: string): ProxyHeader {
  return { status: 'invalid', reason };
}

/** Reads a PROXY header from the start of `data`. Never throws; bounded work for any input. */
export function parseProxyHeader(data: Buffer): ProxyHeader {
  if (data.length === 0) return INCOMPLETE;
  if (data[0] === V1_PREFIX[0]) return parseV1(data);
  if (data[0] === V2_SIGNATURE[0]) return parseV2(data);
  return invalid('no PROXY header');
}

function isPrefixOf(expected: Buffer, data: Buffer): boolean {
  const length = Math.min(expected.length, data.length);
  return expected.subarray(0, length).equals(data.subarray(0, length));
}

function parseV1(data: Buffer): ProxyHeader {
  if (!isPrefixOf(V1_PREFIX, data)) return invalid('no PROXY header');
  const searched = data.subarray(0, V1_MAX_BYTES);
  const lf = searched.indexOf(0x0a);
  if (lf === -1) return data.length >= V1_MAX_BYTES ? invalid('v1 header longer than 107 bytes') : INCOMPLETE;
  if (lf === 0 || searched[lf - 1] !== 0x0d) return invalid('v1 header line not ended by CRLF');
  const line = searched.toString('latin1', 0, lf - 1);
  const fields = line.split(' ');
  const proto = fields[1];
  if (proto === 'UNKNOWN') return { status: 'ok', length: lf + 1, info: undefined };
  if (fields.length !== 6 || (proto !== 'TCP4' && proto !== 'TCP6')) return invalid('malformed v1 header');
  const family = proto === 'TCP4' ? 'IPv4' : 'IPv6';
  const [, , source, destination, sourcePort, destinationPort] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const addresses = [canonical(source, family), canonical(destination, family)];
  const ports = [port(sourcePort), port(destinationPort)];
  if (addresses[0] === undefined || addresses[1] === undefined || ports[0] === undefined || ports[1] === undefined) {
    return invalid('malformed v1 addresses');
  }
  return {
    status: 'ok',
    length: lf + 1,
    info: {
      remote: { address: addresses[0], family, port: ports[0] },
      local: { address: addresses[1], family, port: ports[1] },
    },
  };
}

// One spelling per address, as v2 gives, so that a client has one clientAddress and one ip-hash key.
// A zone (fe80::1%eth0) names an interface of the balancer's host, never a client: refused.
function canonical(address: string, family: 'IPv4' | 'IPv6'): string | undefined {
  if (address.includes('%')) return undefined;
  if (family === 'IPv4') return net.isIPv4(address) ? address : undefined;
  return net.isIPv6(address) ? new net.SocketAddress({ address, family: 'ipv6' }).address : undefined;
}

function port(text: string): number | undefined {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return undefined;
  const value = Number(text);
  return value <= 65535 ? value : undefined;
}

function parseV2(data: Buffer): ProxyHeader {
  if (!isPrefixOf(V2_SIGNATURE, data)) return invalid('malformed v2 signature');
  if (data.length < V2_FIXED_BYTES) return INCOMPLETE;
  const versionCommand = data[12]!;
  if (versionCommand >> 4 !== 2) return invalid('unsupported v2 version');
  const command = versionCommand & 0x0f;
  if (command > 1) return invalid('unsupported v2 command');
  const length = V2_FIXED_BYTES + data.readUInt16BE(14);
  if (length > V2_MAX_BYTES) return invalid('v2 header too long');
  if (data.length < length) return INCOMPLETE;
  if (command === 0) return { status: 'ok', length, info: undefined };

  const familyProtocol = data[13]!;
  const body = data.subarray(V2_FIXED_BYTES, length);
  switch (familyProtocol) {
    case 0x11: // TCP over IPv4
    case 0x12: // UDP over IPv4
      if (body.length < 12) return invalid('v2 header too short for IPv4 addresses');
      return {
        status: 'ok',
        length,
        info: {
          remote: { address: ipv4(body, 0), family: 'IPv4', port: body.readUInt16BE(8) },
          local: { address: ipv4(body, 4), family: 'IPv4', port: body.readUInt16BE(10) },
        },
      };
    case 0x21: // TCP over IPv6
    case 0x22: // UDP over IPv6
      if (body.length < 36) return invalid('v2 header too short for IPv6 addresses');
      return {
        status: 'ok',
        length,
        info: {
          remote: { address: ipv6(body, 0), family: 'IPv6', port: body.readUInt16BE(32) },
          local: { address: ipv6(body, 16), family: 'IPv6', port: body.readUInt16BE(34) },
        },
      };
    case 0x00: // UNSPEC: the balancer does not know; the connection's own addresses stand.
    case 0x31: // Unix stream
    case 0x32: // Unix datagram
      return { status: 'ok', length, info: undefined };
    default:
      return invalid('unsupported v2 address family');
  }
}

function ipv4(data: Buffer, offset: number): string {
  return `${data[offset]}.${data[offset + 1]}.${data[offset + 2]}.${data[offset + 3]}`;
}

function ipv6(data: Buffer, offset: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(data.readUInt16BE(offset + i).toString(16));
  // Let the platform produce the canonical compressed form.
  return new net.SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}
