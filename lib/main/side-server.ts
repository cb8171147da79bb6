import { once } from 'node:events';
import type http from 'node:http';
import type net from 'node:net';
import { loadHttp } from '../builtins.ts';

export interface SideServer {
  server: http.Server;
  /** Where it listens, as bound: `http://[::]:9100` when given no host. */
  url: string;
  close(): Promise<void>;
}

// The metrics and probe servers run on the main thread, beside the proxy: whatever their clients do,
// it must cost next to nothing. Slow or idle clients are cut, and only a few may connect at once.
const SERVER_OPTIONS: http.ServerOptions = {
  headersTimeout: 2_000,
  requestTimeout: 5_000,
  keepAliveTimeout: 2_000,
  connectionsCheckingInterval: 500,
  maxHeaderSize: 4_096,
};
export const SIDE_SERVER_MAX_CONNECTIONS = 32;
const SOCKET_TIMEOUT_MS = 5_000;

/** An HTTP server of the launcher's own, apart from the app's port. `host` as for listen(): all interfaces when undefined. */
export async function listenSideServer(
  handler: http.RequestListener,
  port: number,
  host: string | undefined,
): Promise<SideServer> {
  const server = loadHttp().createServer(SERVER_OPTIONS, handler);
  server.maxConnections = SIDE_SERVER_MAX_CONNECTIONS;
  server.setTimeout(SOCKET_TIMEOUT_MS);
  server.listen(port, host);
  await once(server, 'listening');
  const { address, port: bound } = server.address() as net.AddressInfo;
  return {
    server,
    url: `http://${address.includes(':') ? `[${address}]` : address}:${bound}`,
    close: async () => {
      server.close();
      server.closeAllConnections();
      await once(server, 'close');
    },
  };
}
