// The topology of "scaling Node.js socket servers with nginx and Redis": nginx in front of two hosts,
// each a launcher with several workers, and the Redis adapter the app sets itself. nginx keeps each
// client on one host; within a host, each request of a session reaches the worker that owns it.
import http from 'node:http';
import t, { type Test } from 'tap';
import { io, type Socket } from 'socket.io-client';
import { examplePath } from '../examples.ts';
import { waitFor, withDeadline } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';
import { freePort, skipUnlessInstalled, startNginx, startRedis } from '../services.ts';

const app = examplePath('socketio-redis/app.js');
const CLIENTS = 30;

/** nginx as in docs/Guides/Socket.IO.md: each client address on one host, WebSocket passed through. */
export function twoHostsNginx(port: number, hosts: number[]): string {
  return `
http {
  access_log off;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream socketnaut {
    hash $remote_addr consistent;
    ${hosts.map((host) => `server 127.0.0.1:${host};`).join('\n    ')}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://socketnaut;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}`;
}

interface Client {
  socket: Socket;
  server?: string;
  heard: string[];
}

function connect(t: Test, port: number, address: string): Client {
  const socket = io(`http://127.0.0.1:${port}`, {
    agent: new http.Agent({ localAddress: address }) as never,
    forceNew: true,
    reconnection: false,
    timeout: 5000,
  });
  t.teardown(() => void socket.close());
  const client: Client = { socket, heard: [] };
  socket.on('welcome', ({ server }: { server: string }) => {
    client.server = server;
  });
  socket.on('chat message', ({ text }: { text: string }) => client.heard.push(text));
  return client;
}

t.test(
  'two hosts behind nginx, one Redis: sessions on both hosts, one message reaches all',
  {
    skip: skipUnlessInstalled('redis', 'nginx'),
  },
  async (t) => {
    const redis = await startRedis(t);
    const env = { REDIS_URL: redis.url };
    const hosts = await Promise.all([0, 1].map(() => startLauncher(t, [app, '--workers', '2'], env)));
    const port = await freePort();
    await startNginx(
      t,
      twoHostsNginx(
        port,
        hosts.map((host) => host.port),
      ),
    );
    const clients = Array.from({ length: CLIENTS }, (_, i) => connect(t, port, `127.0.4.${i + 1}`));
    await waitFor(() => clients.every((c) => c.server !== undefined), {
      timeout: 15_000,
      what: 'every client welcomed',
    });
    await waitFor(() => clients.every((c) => c.socket.io.engine?.transport.name === 'websocket'), {
      timeout: 10_000,
      what: 'every client upgraded',
    });
    const servers = new Set(clients.map((c) => c.server));
    t.equal(servers.size, 2, `the clients were spread over both hosts: ${[...servers].join(', ')}`);
    await clients[0]!.socket.timeout(5000).emitWithAck('chat message', 'to everyone');
    await withDeadline(
      waitFor(() => clients.every((c) => c.heard.includes('to everyone')), { timeout: 5000, what: 'all heard' }),
      6000,
      `one message reaching all ${CLIENTS}`,
    );
    t.pass(`one io.emit() reached all ${CLIENTS} clients on both hosts`);
  },
);
