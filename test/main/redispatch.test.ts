import t from 'tap';
import { fixture, requestJSON, startProxy, waitFor } from '../helpers.ts';

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
