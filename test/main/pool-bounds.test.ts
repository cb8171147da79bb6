import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import t from 'tap';
import { createServiceProxy, type ServiceProxyAgent } from 'socketnaut';
import { fixture, observeFor, requestJSON, startProxy, transports, waitFor } from '../helpers.ts';

const CLIENTS = 500;
const CHECKING_INTERVAL_MS = 200;

for (const transport of transports) {
  t.test(`${transport}: the pool stays within minWorkers..maxWorkers and shrinks back when idle`, async (t) => {
    const { proxy, port } = await startProxy(t, {
      workerURL: fixture('http-server.js'),
      minWorkers: 1,
      maxWorkers: 3,
      workersCheckingInterval: CHECKING_INTERVAL_MS,
      transport,
    });
    t.equal(proxy.agents.length, 1, 'starts with minWorkers');

    const samples: number[] = [proxy.agents.length];
    const sample = (): void => {
      samples.push(proxy.agents.length);
    };
    let online = 0;
    const onOnline = (): void => {
      online++;
      sample();
    };
    proxy.on('worker-online', onOnline);
    t.teardown(() => proxy.off('worker-online', onOnline));
    const exits = new Map<number, string>();
    const onExit = (handle: ServiceProxyAgent, _code: number, reason: string): void => {
      exits.set(handle.id, reason);
    };
    proxy.on('worker-exit', onExit);
    t.teardown(() => proxy.off('worker-exit', onExit));
    const started = new Set(proxy.agents.map((a) => a.id));
    const noteStarted = (): void => {
      for (const agent of proxy.agents) started.add(agent.id);
    };

    const threads = new Set<number>();
    const send = (count: number): Promise<void>[] =>
      Array.from({ length: count }, async () => {
        const info = await requestJSON<{ threadId: number }>(port, { path: '/slow?ms=300' });
        sample();
        noteStarted();
        threads.add(info.threadId);
      });
    // Waves, each sent when one more worker has come online, keep asking the pool to grow past its bound.
    const waves = [200, 150, 150];
    const pending: Promise<void>[] = [];
    for (const [i, size] of waves.entries()) {
      if (i > 0) await waitFor(() => online >= i, 4000).catch(() => t.comment(`worker ${i + 1} did not come online`));
      noteStarted();
      pending.push(...send(size));
      sample();
    }
    const settled = await Promise.allSettled(pending);
    sample();
    noteStarted();
    const failures = settled.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    t.equal(failures.length, 0, `all ${CLIENTS} requests succeed`, {
      errors: [...new Set(failures.map((f) => String(f.reason)))].slice(0, 5),
    });
    const most = Math.max(...samples);
    t.ok(most <= 3, `never more than maxWorkers (most seen: ${most})`);
    t.ok(most >= 2, `grew past minWorkers under load (most seen: ${most})`);
    t.ok(started.size >= 2, `more than one worker was started (${started.size})`);

    // Once idle, every extra worker is retired until exactly minWorkers are left.
    await waitFor(() => proxy.agents.length <= 1, 5000);
    t.equal(proxy.agents.length, 1, 'reaped down to exactly minWorkers');
    const survivor = proxy.agents[0];
    // The one left may be a worker still starting, which the reaper counts towards minWorkers.
    await waitFor(() => survivor?.state !== 'starting', 5000).catch(() => {});
    t.equal(survivor?.state, 'ready', 'the one left is serving');
    const extra = [...started].filter((id) => id !== survivor?.id);
    t.same(
      extra.map((id) => exits.get(id)),
      extra.map(() => 'retired'),
      'every other worker was retired, none crashed',
    );

    // The survivor is not reaped: the next checks find the pool at minWorkers already. A window, not a
    // sleep: what is under test is that nothing happens over three more of the reaper's checks.
    await observeFor(3 * CHECKING_INTERVAL_MS);
    t.equal(proxy.agents.length, 1, 'still minWorkers after more checks');
    t.equal(proxy.agents[0], survivor, 'the same worker');
    const info = await requestJSON<{ threadId: number }>(port);
    t.equal(info.threadId, survivor?.threadId, 'and it serves');
  });
}

t.test('maxWorkers defaults to os.availableParallelism()', async (t) => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.close();
  });
  const parallelism = os.availableParallelism();

  const byDefault = createServiceProxy({ server, workerURL: fixture('http-server.js') });
  t.teardown(() => byDefault.shutdown({ timeout: 1000 }));
  // Shut down before any worker starts: only the resolved bounds are under test.
  await byDefault.shutdown({ timeout: 1000 });
  t.equal(byDefault.maxWorkers, parallelism, 'maxWorkers');
  t.equal(byDefault.minWorkers, 0, 'minWorkers defaults to 0');
  t.equal(byDefault.agents.length, 0, 'no worker was started');

  const withMin = createServiceProxy({
    server: net.createServer(),
    workerURL: fixture('http-server.js'),
    minWorkers: 1,
  });
  t.teardown(() => withMin.shutdown({ timeout: 1000 }));
  await withMin.shutdown({ timeout: 1000 });
  t.equal(withMin.maxWorkers, Math.max(1, parallelism), 'maxWorkers with minWorkers 1');

  const aboveParallelism = parallelism + 3;
  const withBigMin = createServiceProxy({
    server: net.createServer(),
    workerURL: fixture('http-server.js'),
    minWorkers: aboveParallelism,
  });
  t.teardown(() => withBigMin.shutdown({ timeout: 1000 }));
  await withBigMin.shutdown({ timeout: 1000 });
  t.equal(withBigMin.maxWorkers, aboveParallelism, 'maxWorkers is raised to a larger minWorkers');
});
