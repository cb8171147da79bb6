import type { ProxySocketAddressInfo, SocketAddress } from '../../protocol/address-info.ts';

// The pipe transport opens each worker connection with one line that carries the client's address,
// so the worker knows it before the first byte of the client's data, for every connection (a
// connection to a Unix socket, which has no address, has 'unix - 0' for each end):
//   SNP1 <token> <remote family> <remote address> <remote port> <local family> <local address> <local port> <peer> <id> <shared port>\n
// The peer is the address the proxy accepted the connection from: the client itself, or the balancer
// in front when a PROXY header named the client. The id names the connection when the worker reports
// it closed. The shared port names the app's server it is for: 0 for the public port's.
// The token is a per-proxy secret: a local process that finds the socket file cannot forge a client.
// The worker answers a preamble from the proxy with one byte: it takes the connection, or refuses it
// (its app closed the server it is for). The proxy sends the client's bytes only once it is taken, so
// a refused connection goes, intact, to another worker. A connection between workers (id 0) gets no
// answer.
const MAGIC = 'SNP1';
export const PIPE_TAKEN = 0x06;
export const PIPE_REFUSED = 0x15;
/** The id of a connection from another worker, which the proxy does not count. */
export const BETWEEN_WORKERS = 0;
export const PREAMBLE_MAX_BYTES = 256;

/** The ends of a connection to a Unix socket, which have no IP address or port, as the preamble writes them. */
const NO_ADDRESS: SocketAddress = { family: 'unix', address: '-', port: 0 };

/** `info` is undefined for a connection to a Unix socket, whose ends have no address. */
export function encodePreamble(
  token: string,
  info: ProxySocketAddressInfo | undefined,
  peer: string,
  id: number,
  sharedPort: number,
): string {
  const { remote, local } = info ?? { remote: NO_ADDRESS, local: NO_ADDRESS };
  return `${MAGIC} ${token} ${remote.family} ${remote.address} ${remote.port} ${local.family} ${local.address} ${local.port} ${peer} ${id} ${sharedPort}\n`;
}

export type PreambleResult =
  | { status: 'incomplete' }
  | { status: 'invalid'; reason: string }
  | {
      status: 'ok';
      info: ProxySocketAddressInfo | undefined;
      peer: string;
      id: number;
      sharedPort: number;
      length: number;
    };

const INCOMPLETE = { status: 'incomplete' } as const;

export function decodePreamble(buffer: Buffer, token: string): PreambleResult {
  const end = buffer.indexOf(0x0a);
  if (end === -1) {
    return buffer.length >= PREAMBLE_MAX_BYTES ? { status: 'invalid', reason: 'preamble too long' } : INCOMPLETE;
  }
  if (end >= PREAMBLE_MAX_BYTES) return { status: 'invalid', reason: 'preamble too long' };
  const fields = buffer.toString('latin1', 0, end).split(' ');
  if (fields.length !== 11 || fields[0] !== MAGIC) return { status: 'invalid', reason: 'malformed preamble' };
  if (fields[1] !== token) return { status: 'invalid', reason: 'wrong token' };
  const remote = address(fields[2]!, fields[3]!, fields[4]!);
  const local = address(fields[5]!, fields[6]!, fields[7]!);
  if (!remote || !local) return { status: 'invalid', reason: 'malformed address' };
  const id = Number(fields[9]);
  const sharedPort = Number(fields[10]);
  if (!Number.isSafeInteger(id) || !Number.isSafeInteger(sharedPort))
    return { status: 'invalid', reason: 'malformed id' };
  const info = remote.family === NO_ADDRESS.family ? undefined : { remote, local };
  return { status: 'ok', info, peer: fields[8]!, id, sharedPort, length: end + 1 };
}

function address(family: string, address: string, port: string): SocketAddress | undefined {
  const portNumber = Number(port);
  if (!Number.isInteger(portNumber) || portNumber < 0 || portNumber > 65535) return undefined;
  return { address, family, port: portNumber };
}
