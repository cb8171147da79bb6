import fs from 'node:fs';
import t from 'tap';
import { fixture, requestJSON, startProxy, waitFor } from './helpers.ts';

t.test('pipe: a connection a worker cannot take goes to another worker, and is served', async (t) => {
  const { proxy, port } = await startProxy(t, {
    workerURL: fixture('http-server.js'),
    workerCount: 2,
    transport: 'pipe',
    balance: 'round-robin',
  });
  const [broken, healthy] = proxy.agents;
  // Its Unix socket gone, the first worker refuses every connection while still counted as ready.
  fs.unlinkSync(broken!.pipePath!);

  const served: number[] = [];
  for (let i = 0; i < 10; i++) served.push(((await requestJSON(port, { agent: false })) as { threadId: number }).threadId);
  t.same(served, served.map(() => healthy!.threadId), 'every request was served, by the worker that could take it');

  const stats = await proxy.stats();
  t.ok(stats.redispatched >= 5, `the broken worker was offered connections and refused them (${stats.redispatched} times)`);
  t.equal(stats.dispatched - stats.redispatched, 10, 'each connection counted once as dispatched, plus once per refusal');
  t.equal(broken!.connections, 0, 'the refused connections were counted out of the broken worker');
  await waitFor(() => healthy!.connections === 0);
  t.pass('and the served ones out of the healthy worker once closed');
});
