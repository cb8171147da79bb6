// With the reuseport transport, a worker that crashes takes its listener with it. The connections
// still waiting in that listener's accept queue are reset by Linux, unless net.ipv4.tcp_migrate_req
// is 1, which moves them to the other workers' listeners. A reload or any planned exit moves the
// listener itself first, so it loses nothing either way (see transports/reuseport.test.ts).
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import { consoleHandler, createServiceProxy, Level } from 'socketnaut';
import { fixture, waitFor, withDeadline } from '../helpers.ts';
import { skipUnlessSupported } from '../transport-support.ts';

consoleHandler.setLevel(Level.ERROR);

const SYSCTL = '/proc/sys/net/ipv4/tcp_migrate_req';
const QUEUED = 40;

function writable(): boolean {
  try {
    fs.writeFileSync(SYSCTL, fs.readFileSync(SYSCTL, 'utf8'));
    return true;
  } catch {
    return false;
  }
}

function get(port: number, path: string, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, localAddress, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

const canSet = fs.existsSync(SYSCTL) && writable();
for (const migrate of ['1', '0']) {
  t.test(
    `tcp_migrate_req=${migrate}: connections queued on a worker that crashes are ${migrate === '1' ? 'served by the other' : 'reset'}`,
    {
      skip:
        skipUnlessSupported('reuseport') ||
        (!canSet && 'needs a writable net.ipv4.tcp_migrate_req (Linux 5.14+, root)'),
    },
    async (t) => {
      const previous = fs.readFileSync(SYSCTL, 'utf8');
      fs.writeFileSync(SYSCTL, migrate);
      t.teardown(() => fs.writeFileSync(SYSCTL, previous));

      const server = net.createServer();
      server.listen({ port: 0, host: '127.0.0.1', reusePort: true });
      await once(server, 'listening');
      const port = (server.address() as net.AddressInfo).port;
      // round-robin keeps each connection where the kernel put it.
      const proxy = createServiceProxy({
        server,
        workerURL: fixture('obs-busy.js'),
        workerCount: 2,
        transport: 'reuseport',
        balance: 'round-robin',
      });
      t.teardown(() => proxy.shutdown({ timeout: 1000 }));
      await once(proxy, 'ready');
      await waitFor(() => proxy.agents.every((agent) => agent.state === 'ready'), { what: 'both workers serving' });

      // One worker's loop blocks: what the kernel gives its listener waits in the accept queue.
      const blocked = new Promise<void>((resolve) => {
        http
          .get({ host: '127.0.0.1', port, path: '/block?ms=5000', agent: false }, (res) => {
            resolve();
            res.resume();
          })
          .on('error', () => {});
      });
      await blocked;
      const victim = await waitFor(() => proxy.agents.find((agent) => agent.connections === 1), {
        what: 'the blocked worker',
      });
      const outcomes = Array.from({ length: QUEUED }, (_, i) =>
        get(port, '/fast', `127.0.3.${i + 1}`).then(
          () => 'served',
          (err: NodeJS.ErrnoException) => err.code ?? err.message,
        ),
      );
      // Until the other worker has served its share, the rest wait in the blocked one's queue.
      await waitFor(async () => (await proxy.stats()).accepted >= 1 + QUEUED / 4, {
        what: "the other worker's share served",
      });
      const replaced = once(proxy, 'worker-online');
      await victim.worker.terminate();
      const results = await withDeadline(Promise.all(outcomes), 10_000, 'every request settled');
      await withDeadline(replaced, 10_000, 'a replacement served');
      const served = results.filter((result) => result === 'served').length;
      t.comment(
        `tcp_migrate_req=${migrate}: ${served} of ${QUEUED} served; the rest: ${[...new Set(results.filter((r) => r !== 'served'))].join(', ') || 'none'}`,
      );
      if (migrate === '1') t.equal(served, QUEUED, 'every queued connection moved to the other worker and was served');
      else t.ok(served < QUEUED, 'the connections queued on the crashed worker were reset');
    },
  );
}
