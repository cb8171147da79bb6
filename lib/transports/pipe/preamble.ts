import type { ProxySocketAddressInfo, SocketAddress } from '../../protocol/address-info.ts';

// The pipe transport opens each worker connection with one line that carries the client's address,
// so the worker knows it before the first byte of the client's data, for every connection:
//   SNP1 <token> <remote family> <remote address> <remote port> <local family> <local address> <local port> <peer> <id>\n
// The peer is the address the proxy accepted the connection from: the client itself, or the balancer
// in front when a PROXY header named the client. The id names the connection when the worker reports
// it closed.
// The token is a per-proxy secret: a local process that finds the socket file cannot forge a client.
const MAGIC = 'SNP1';
export const PREAMBLE_MAX_BYTES = 256;

export function encodePreamble(token: string, info: ProxySocketAddressInfo, peer: string, id: number): string {
  const { remote, local } = info;
  return `${MAGIC} ${token} ${remote.family} ${remote.address} ${remote.port} ${local.family} ${local.address} ${local.port} ${peer} ${id}\n`;
}

export type PreambleResult =
  | { status: 'incomplete' }
  | { status: 'invalid'; reason: string }
  | { status: 'ok'; info: ProxySocketAddressInfo; peer: string; id: number; length: number };

const INCOMPLETE = { status: 'incomplete' } as const;

export function decodePreamble(buffer: Buffer, token: string): PreambleResult {
  const end = buffer.indexOf(0x0a);
  if (end === -1) {
    return buffer.length >= PREAMBLE_MAX_BYTES ? { status: 'invalid', reason: 'preamble too long' } : INCOMPLETE;
  }
  if (end >= PREAMBLE_MAX_BYTES) return { status: 'invalid', reason: 'preamble too long' };
  const fields = buffer.toString('latin1', 0, end).split(' ');
  if (fields.length !== 10 || fields[0] !== MAGIC) return { status: 'invalid', reason: 'malformed preamble' };
  if (fields[1] !== token) return { status: 'invalid', reason: 'wrong token' };
  const remote = address(fields[2]!, fields[3]!, fields[4]!);
  const local = address(fields[5]!, fields[6]!, fields[7]!);
  if (!remote || !local) return { status: 'invalid', reason: 'malformed address' };
  const id = Number(fields[9]);
  if (!Number.isSafeInteger(id)) return { status: 'invalid', reason: 'malformed id' };
  return { status: 'ok', info: { remote, local }, peer: fields[8]!, id, length: end + 1 };
}

function address(family: string, address: string, port: string): SocketAddress | undefined {
  const portNumber = Number(port);
  if (!Number.isInteger(portNumber) || portNumber < 0 || portNumber > 65535) return undefined;
  return { address, family, port: portNumber };
}
