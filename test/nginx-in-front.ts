// nginx in front of a launcher as a reverse proxy, as trustProxy's tests run it: proxy_pass with
// X-Forwarded-For set, upstream connections kept alive so that one carries several clients' requests.
import type { Test } from 'tap';
import { requestJSON } from './helpers.ts';
import { freePort, startNginx } from './services.ts';

export function nginxConfig(port: number, upstream: number): string {
  return `
http {
  access_log off;
  upstream app {
    server 127.0.0.1:${upstream};
    keepalive 4;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}`;
}

/** Starts nginx in front of `upstream`; its port. */
export async function nginxInFront(t: Test, upstream: number): Promise<number> {
  const port = await freePort();
  await startNginx(t, nginxConfig(port, upstream));
  return port;
}

/** What test/fixtures/express-app.js answers. */
export interface Reply {
  hello: string;
  info: { remote: { address: string; port: number } };
  threadId: number;
}

/** Client addresses on the loopback network, one per client. */
export const clientAddresses = (count: number): string[] =>
  Array.from({ length: count }, (_, i) => `127.0.0.${10 + i}`);

/**
 * `rounds` requests of each client, all clients at once in each round: nginx sends them over several
 * upstream connections, and keeps a few alive for the next rounds, which then carry several clients.
 */
export async function requestsOf(
  port: number,
  clients: readonly string[],
  rounds: number,
  headers: Record<string, string> = {},
): Promise<Map<string, Reply[]>> {
  const replies = new Map<string, Reply[]>(clients.map((client) => [client, []]));
  for (let round = 0; round < rounds; round++) {
    const answers = await Promise.all(
      clients.map((localAddress) => requestJSON<Reply>(port, { localAddress, headers })),
    );
    answers.forEach((reply, i) => replies.get(clients[i]!)!.push(reply));
  }
  return replies;
}

/** How many client addresses the busiest upstream connection (nginx's source port) carried. */
export function clientsPerUpstreamConnection(replies: Map<string, Reply[]>): number {
  const clientsBy = new Map<number, Set<string>>();
  for (const [client, list] of replies) {
    for (const reply of list) {
      const set = clientsBy.get(reply.info.remote.port) ?? new Set<string>();
      set.add(client);
      clientsBy.set(reply.info.remote.port, set);
    }
  }
  return Math.max(...[...clientsBy.values()].map((set) => set.size));
}
