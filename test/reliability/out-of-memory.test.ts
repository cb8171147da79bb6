import t from 'tap';
import { httpRequest, mb, MB, startChildProxy, transports, type ChildProxy } from './helpers.ts';

const ROUNDS = 5;
const HEAP_LIMIT_MB = 64;
// RSS includes what the allocator keeps of each dead worker's native memory: over 5 rounds it grew
// 3.5 to 14 MB before the sessions and Socket.IO work, 10 to 26 MB since (pipe, 2 cores), while the
// main thread's and the workers' JS heaps stayed flat to 0.1 MB. The heaps are held to a tight limit;
// RSS to one that a dead worker's 64 MB heap, kept, would break at once.
const RSS_GROWTH_LIMIT = 32 * MB;
const MAIN_HEAP_GROWTH_LIMIT = 4 * MB;

// A request that makes its worker allocate until V8 stops it; the connection dies with the worker.
function exhaust(proxy: ChildProxy): Promise<string> {
  return httpRequest(proxy.port, { path: '/oom', deadline: 30_000 }).then(
    (reply) => `answered ${reply.status}`,
    (err: Error) => err.message,
  );
}

async function settledRss(proxy: ChildProxy): Promise<number> {
  // Some requests first, so that the new worker is as warm as the one it replaced.
  for (let i = 0; i < 20; i++) await httpRequest(proxy.port);
  return (await proxy.snapshot()).rss;
}

for (const transport of transports) {
  t.test(
    `${transport}: a worker that runs out of memory is replaced, ${ROUNDS} of ${ROUNDS} times, and leaves no memory behind`,
    async (t) => {
      const proxy = await startChildProxy(t, {
        transport,
        workerCount: 2,
        workerOptions: { resourceLimits: { maxOldGenerationSizeMb: HEAP_LIMIT_MB } },
        exposeGc: true,
      });
      const baseline = await settledRss(proxy);
      const heapBefore = (await proxy.snapshot()).memory.heapUsed;
      const rssAfter: number[] = [];
      const outcomes: string[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const exit = proxy.next('worker-exit', undefined, 30_000);
        const online = proxy.next('worker-online', undefined, 30_000);
        outcomes.push(await exhaust(proxy));
        const exited = await exit;
        t.equal(
          exited.errorCode,
          'ERR_WORKER_OUT_OF_MEMORY',
          `round ${round + 1}: the worker died of its memory limit (${exited.reason})`,
        );
        const replacement = await online;
        t.ok(replacement.at > exited.at, `round ${round + 1}: a replacement came online after the death`);
        rssAfter.push(await settledRss(proxy));
      }
      const exits = proxy.events.filter((event) => event.event === 'worker-exit');
      const online = proxy.events.filter((event) => event.event === 'worker-online');
      const growth = rssAfter.at(-1)! - baseline;
      t.comment(
        `${transport}: RSS before ${mb(baseline)}; after each round ${rssAfter.map(mb).join(', ')}; growth ${mb(growth)}`,
      );
      t.comment(`${transport}: what the /oom clients saw: ${[...new Set(outcomes)].join('; ')}`);
      t.equal(exits.length, ROUNDS, `${ROUNDS} workers died`);
      t.equal(online.length, 2 + ROUNDS, `${ROUNDS} replacements came online`);
      t.equal(
        (await proxy.snapshot()).stats.workers.filter((w) => w.state === 'ready').length,
        2,
        'two workers serve at the end',
      );
      t.ok(growth < RSS_GROWTH_LIMIT, `the process's RSS grew by ${mb(growth)} (limit ${mb(RSS_GROWTH_LIMIT)})`);
      const heapGrowth = (await proxy.snapshot()).memory.heapUsed - heapBefore;
      t.ok(
        heapGrowth < MAIN_HEAP_GROWTH_LIMIT,
        `the main thread's heap grew by ${mb(heapGrowth)} (limit ${mb(MAIN_HEAP_GROWTH_LIMIT)})`,
      );
      const { code } = await proxy.shutdown();
      t.equal(code, 0, 'the main process shuts down cleanly');
      t.notMatch(proxy.stderr(), /Uncaught/, 'no uncaught exception on the main thread');
    },
  );
}
