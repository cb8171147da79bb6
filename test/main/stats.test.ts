import { once } from 'node:events';
import net from 'node:net';
import t from 'tap';
import type { ProxyStats, ServiceProxy, ServiceProxyAgent as WorkerHandle } from 'socketnaut';
import { fixture, request, startProxy, transports, waitFor } from '../helpers.ts';

const REQUESTS = 12;
// A worker that served this long is replaced at once rather than after a back-off (HEALTHY_UPTIME_MS).
const HEALTHY_UPTIME_MS = 1000;

/** Resolves with the first stats() snapshot for which `check` holds; rejects after `timeout` ms. */
function statsWhen(proxy: ServiceProxy, check: (stats: ProxyStats) => boolean, timeout = 5000): Promise<ProxyStats> {
  let last: ProxyStats | undefined;
  return waitFor(
    async () => {
      last = await proxy.stats();
      return check(last) ? last : undefined;
    },
    { timeout, interval: 10, what: () => `stats matching the check (last: ${JSON.stringify(last)})` },
  );
}

function onlineAfter(proxy: ServiceProxy, count: number): Promise<WorkerHandle[]> {
  const online: WorkerHandle[] = [];
  return new Promise((resolve) => {
    const onOnline = (handle: WorkerHandle): void => {
      online.push(handle);
      if (online.length < count) return;
      proxy.off('worker-online', onOnline);
      resolve(online);
    };
    proxy.on('worker-online', onOnline);
  });
}

function exitsAfter(proxy: ServiceProxy, count: number): Promise<[WorkerHandle, string][]> {
  const exits: [WorkerHandle, string][] = [];
  return new Promise((resolve) => {
    const onExit = (handle: WorkerHandle, _code: number, reason: string): void => {
      exits.push([handle, reason]);
      if (exits.length < count) return;
      proxy.off('worker-exit', onExit);
      resolve(exits);
    };
    proxy.on('worker-exit', onExit);
  });
}

for (const transport of transports) {
  t.test(`${transport}: stats() counts a scripted sequence exactly`, async (t) => {
    const { proxy, port } = await startProxy(t, { workerURL: fixture('http-server.js'), workerCount: 2, transport });

    const fresh = await proxy.stats();
    t.equal(fresh.transport, transport);
    t.equal(fresh.accepted, 0, 'nothing accepted before the first request');

    for (let i = 0; i < REQUESTS; i++) {
      const reply = await request(port, { agent: false });
      t.equal(reply.status, 200);
    }
    const stats = await statsWhen(proxy, (s) => s.connections === 0);

    t.equal(stats.accepted, REQUESTS, 'accepted');
    t.equal(stats.dispatched, REQUESTS, 'dispatched');
    t.equal(stats.redispatched, 0, 'redispatched');
    t.equal(stats.refused, 0, 'refused');
    t.equal(stats.queued, 0, 'queued');
    t.equal(stats.queuedNow, 0, 'queuedNow');
    t.equal(stats.expired, 0, 'expired');
    t.equal(stats.acceptErrors, 0, 'acceptErrors');
    t.equal(stats.proxyHeaderRejected, 0, 'proxyHeaderRejected');
    t.equal(stats.restarts, 0, 'restarts');
    t.equal(stats.reloads, 0, 'reloads');
    t.equal(stats.workers.length, 2, 'two workers');
    t.equal(
      stats.workers.reduce((sum, w) => sum + w.totalConnections, 0),
      REQUESTS,
      'totalConnections add up',
    );
    t.same(stats.workers.map((w) => w.slot).sort(), [0, 1], 'slots 0 and 1');
    t.same(
      stats.workers.map((w) => w.threadId).sort(),
      proxy.agents.map((a) => a.threadId).sort(),
      'threadIds are the live workers',
    );
    for (const w of stats.workers) {
      t.equal(w.state, 'ready');
      t.equal(w.connections, 0, `worker ${w.slot}: no open connection`);
      t.equal(w.restarts, 0);
      t.ok(typeof w.heapUsed === 'number' && w.heapUsed > 0, `worker ${w.slot}: heapUsed ${w.heapUsed}`);
      t.ok(
        w.eventLoopUtilization >= 0 && w.eventLoopUtilization <= 1,
        `worker ${w.slot}: eventLoopUtilization ${w.eventLoopUtilization}`,
      );
      t.ok(w.uptimeMs > 0, `worker ${w.slot}: uptimeMs ${w.uptimeMs}`);
    }

    // A worker that dies is replaced in its own slot, and the slot remembers it.
    const victim = proxy.agents[0]!;
    const survivor = proxy.agents[1]!;
    await waitFor(() => performance.now() - victim.readyAt >= HEALTHY_UPTIME_MS, 5000);
    const replaced = onlineAfter(proxy, 1);
    await victim.worker.terminate();
    const [replacement] = await replaced;
    t.equal(replacement!.slot, victim.slot, 'the replacement takes the dead worker slot');
    const afterCrash = await proxy.stats();
    t.equal(afterCrash.restarts, 1, 'restarts');
    t.equal(afterCrash.workers.length, 2);
    const bySlot = new Map(afterCrash.workers.map((w) => [w.slot, w]));
    t.equal(bySlot.get(victim.slot)?.threadId, replacement!.threadId);
    t.equal(bySlot.get(victim.slot)?.restarts, 1, 'the replaced slot counts one restart');
    t.equal(bySlot.get(survivor.slot)?.threadId, survivor.threadId);
    t.equal(bySlot.get(survivor.slot)?.restarts, 0, 'the other slot counts none');
    t.equal(afterCrash.accepted, REQUESTS, 'a restart accepts nothing');

    // A reload counts once and ends with as many workers as before, all new.
    const before = new Set(proxy.agents.map((a) => a.threadId));
    const retired = exitsAfter(proxy, 2);
    await proxy.reload();
    t.equal((await proxy.stats()).reloads, 1, 'reloads');
    const exits = await retired;
    t.same(
      exits.map(([, reason]) => reason),
      ['retired', 'retired'],
    );
    t.same(new Set(exits.map(([handle]) => handle.threadId)), before, 'the old workers were the ones retired');
    const afterReload = await proxy.stats();
    t.equal(afterReload.workers.length, 2, 'two workers after the reload');
    t.equal(afterReload.workers.filter((w) => before.has(w.threadId)).length, 0, 'none of them from before');
    t.equal(afterReload.reloads, 1);
    t.equal(afterReload.restarts, 1, 'a reload is not a restart');

    const reply = await request(port, { agent: false });
    t.equal(reply.status, 200, 'the reloaded pool serves');
  });

  t.test(`${transport}: a connection over maxConnectionsPerIp is refused and counted`, async (t) => {
    const { proxy, port } = await startProxy(t, {
      workerURL: fixture('http-server.js'),
      workerCount: 2,
      transport,
      maxConnectionsPerIp: 1,
    });
    const connect = (localAddress: string): net.Socket => {
      const socket = net.connect({ host: '127.0.0.1', port, localAddress });
      socket.on('error', () => {});
      t.teardown(() => socket.destroy());
      return socket;
    };

    const held = connect('127.0.0.5');
    await once(held, 'connect');
    await statsWhen(proxy, (s) => s.accepted === 1 && s.connections === 1);

    const second = connect('127.0.0.5');
    await once(second, 'close');
    const refused = await proxy.stats();
    t.equal(refused.refused, 1, 'refused');
    t.equal(refused.accepted, 2, 'the refused connection was accepted first');
    t.equal(refused.dispatched, 1, 'only the first reached a worker');
    t.equal(refused.connections, 1, 'the first is still open');

    // The limit is per address, and is freed once the held connection closes.
    const reply = await request(port, { agent: false, localAddress: '127.0.0.6' });
    t.equal(reply.status, 200, 'another address is served meanwhile');
    held.destroy();
    await statsWhen(proxy, (s) => s.connections === 0);
    const again = await request(port, { agent: false, localAddress: '127.0.0.5' });
    t.equal(again.status, 200, 'the address is served again once its connection closed');
    const final = await statsWhen(proxy, (s) => s.connections === 0);
    t.equal(final.refused, 1, 'still one refusal');
    t.equal(final.accepted, 4, 'accepted');
    t.equal(final.dispatched, 3, 'dispatched');
  });
}

// A worker's event-loop use is read from the main thread while the worker runs, so two readings a few
// microseconds apart can disagree by more than the time between them; what stats() reports must
// still be a share of time. Back-to-back readings of idle workers make such a pair likely.
t.test('eventLoopUtilization stays within [0, 1], however short the interval', async (t) => {
  const { proxy } = await startProxy(t, { workerURL: fixture('http-server.js'), workerCount: 2 });
  const outside: number[] = [];
  let readings = 0;
  const deadline = performance.now() + 1500;
  while (performance.now() < deadline && outside.length === 0) {
    const stats = await proxy.stats('short-intervals');
    for (const w of stats.workers) {
      readings++;
      if (!(w.eventLoopUtilization >= 0 && w.eventLoopUtilization <= 1)) outside.push(w.eventLoopUtilization);
    }
  }
  t.same(outside, [], `${readings} readings, none outside [0, 1]`);
});

// WorkerHandle.slot promises that a replacement takes the slot of the worker it replaces; metrics and
// status lines label workers by slot, so a reload must not move a pool of two to slots 0 and 2.
t.test('a reload keeps the slots of the workers it replaces', async (t) => {
  const { proxy } = await startProxy(t, { workerURL: fixture('http-server.js'), workerCount: 2 });
  const retired = exitsAfter(proxy, 2);
  await proxy.reload();
  await retired;
  const stats = await proxy.stats();
  t.same(
    stats.workers.map((w) => w.slot).sort(),
    [0, 1],
    'a pool of two fills slots 0 and 1 after a reload, as before it',
  );
});
