import { once } from 'node:events';
import net from 'node:net';
import t, { type Test } from 'tap';
import { createServiceProxy, type ServiceProxy } from 'socketnaut';
import type { ConcreteTransportName } from '../../lib/protocol/messages.ts';
import { fixture, request, requestJSON, startProxy, waitFor } from '../helpers.ts';
import { allTransports, skipUnlessSupported } from '../transport-support.ts';

t.test('pipe: a connection a worker cannot take goes to another worker, and is served', async (t) => {
  const { proxy, port } = await startProxy(t, {
    workerURL: fixture('http-unlinks-pipe.js'),
    workerCount: 2,
    transport: 'pipe',
    balance: 'round-robin',
  });
  // Its Unix socket gone, one worker refuses every connection while still counted as ready.
  const { threadId: brokenThread } = (await requestJSON(port, { path: '/unlink-pipe' })) as { threadId: number };
  const broken = proxy.agents.find((agent) => agent.threadId === brokenThread);
  const healthy = proxy.agents.find((agent) => agent.threadId !== brokenThread);
  await waitFor(() => broken!.connections === 0);
  const before = await proxy.stats();

  const served: number[] = [];
  for (let i = 0; i < 10; i++)
    served.push(((await requestJSON(port, { agent: false })) as { threadId: number }).threadId);
  t.same(
    served,
    served.map(() => healthy!.threadId),
    'every request was served, by the worker that could take it',
  );

  const stats = await proxy.stats();
  const redispatched = stats.redispatched - before.redispatched;
  t.ok(redispatched >= 5, `the broken worker was offered connections and refused them (${redispatched} times)`);
  t.equal(
    stats.dispatched - before.dispatched - redispatched,
    10,
    'each connection counted once as dispatched, plus once per refusal',
  );
  t.equal(broken!.connections, 0, 'the refused connections were counted out of the broken worker');
  await waitFor(() => healthy!.connections === 0);
  t.pass('and the served ones out of the healthy worker once closed');
});

/** A proxy of 2 workers on the app that closes its server on GET /close, over `transport`. */
async function closingApp(t: Test, transport: ConcreteTransportName): Promise<{ proxy: ServiceProxy; port: number }> {
  const server = net.createServer();
  server.listen({ port: 0, host: '127.0.0.1', reusePort: transport === 'reuseport' });
  await once(server, 'listening');
  const proxy = createServiceProxy({
    server,
    workerURL: fixture('close-then-500.js'),
    workerCount: 2,
    transport,
    maxConnectionsPerIp: 1000,
  });
  t.teardown(() => proxy.shutdown({ timeout: 2000 }));
  await once(proxy, 'ready');
  return { proxy, port: (server.address() as net.AddressInfo).port };
}

// A connection for a server its app closed comes back from the worker, unread, and goes to another;
// the counts follow it: nothing is left counted once the clients are done, per address included.
for (const transport of allTransports) {
  t.test(
    `${transport}: a connection given back by a worker whose app closed its server is served, and counted once`,
    { skip: skipUnlessSupported(transport) },
    async (t) => {
      const { proxy, port } = await closingApp(t, transport);
      let running = true;
      let served = 0;
      const failed: string[] = [];
      const clients = Array.from({ length: 8 }, async () => {
        while (running) {
          const reply = await request(port).catch((err: Error) => ({ status: err.message }));
          if (reply.status === 200) served++;
          else failed.push(String(reply.status));
        }
      });
      for (let i = 0; i < 3; i++) {
        const before = new Set(proxy.agents.map((agent) => agent.threadId));
        await request(port, { path: '/close' });
        await waitFor(() => proxy.agents.some((agent) => agent.state === 'ready' && !before.has(agent.threadId)), {
          timeout: 10_000,
          what: 'a worker in place of the one whose server closed',
        });
      }
      running = false;
      await Promise.all(clients);
      t.same(failed, [], `${served} requests served, none failed, none after a server's 'close'`);
      await waitFor(async () => (await proxy.stats()).connections === 0, { what: 'every connection counted out' });
      t.pass(`counted out; ${(await proxy.stats()).redispatched} connections were given back and offered again`);
    },
  );
}
