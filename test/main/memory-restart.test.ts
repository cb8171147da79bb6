import t from 'tap';
import { fixture, observeFor, requestJSON, transports, waitFor } from '../helpers.ts';
import { healthURL, metricsURL, metricValue, probe, scrape } from '../health-report.ts';
import { startLauncher } from '../launcher.ts';

// A worker whose V8 heap grows past --max-memory-restart is recycled as in a rolling reload, with no
// failed request; its successor, going over again within a minute, is reported and left serving.
// One worker, so that /grow lands on the worker meant. The limit leaves room for the young
// generation's garbage under load, which counts as heap in use until it is collected (tens of MB).
const app = fixture('health-app.js').pathname;
const LIMIT_MB = 100;
const GROW_MB = 120;
const CLIENTS = 4;

for (const transport of transports) {
  t.test(
    `${transport}: a worker over maxMemoryRestart is replaced under load with no failed request, once`,
    async (t) => {
      const launcher = await startLauncher(t, [
        '--workers',
        '1',
        '--transport',
        transport,
        '--max-memory-restart',
        String(LIMIT_MB),
        '--health',
        '127.0.0.1:0',
        '--metrics',
        '127.0.0.1:0',
        app,
      ]);
      const health = await healthURL(launcher);
      const metrics = await metricsURL(launcher);
      const output = (): string => launcher.stdout() + launcher.stderr();
      const [first] = (await probe(health)).report.workers;

      let loading = true;
      t.teardown(() => {
        loading = false;
      });
      const servedBy = new Map<number, number>();
      const failures: string[] = [];
      const clients = Array.from({ length: CLIENTS }, async () => {
        while (loading) {
          await requestJSON<{ threadId: number }>(launcher.port).then(
            ({ threadId }) => servedBy.set(threadId, (servedBy.get(threadId) ?? 0) + 1),
            (err: Error) => failures.push(err.message),
          );
        }
      });

      t.equal(
        (await requestJSON<{ threadId: number }>(launcher.port, { path: `/grow?mb=${GROW_MB}` })).threadId,
        first!.threadId,
        'the heap grows',
      );
      const recycled = await waitFor(
        async () => {
          const { report } = await probe(health);
          return (
            report.workers.length === 1 &&
            report.workers[0]!.threadId !== first!.threadId &&
            report.workers[0]!.status === 'serving' &&
            report.workers[0]
          );
        },
        { timeout: 10_000, interval: 20, what: 'the old worker gone and a new one serving' },
      );
      t.equal(recycled.slot, first!.slot, 'the successor took its slot');
      t.match(
        output(),
        new RegExp(
          `Worker ${first!.threadId} \\(slot 0\\) uses \\d+ MB of heap, over maxMemoryRestart \\(${LIMIT_MB} MB\\): recycling it`,
        ),
        'the recycle is logged',
      );
      const page = await scrape(metrics);
      t.equal(metricValue(page, 'socketnaut_worker_memory_restarts_total'), 1, 'one memory restart counted');
      t.equal(metricValue(page, 'socketnaut_worker_restarts_total'), 0, 'not counted as a crash');
      await waitFor(() => (servedBy.get(recycled.threadId) ?? 0) > 0, { what: 'the load served by the successor' });

      // The successor goes over too, well within a minute of starting: reported, not recycled again.
      t.equal(
        (await requestJSON<{ threadId: number }>(launcher.port, { path: `/grow?mb=${GROW_MB}` })).threadId,
        recycled.threadId,
      );
      await waitFor(async () => metricValue(await scrape(metrics), 'socketnaut_worker_memory_over_limit_total') === 1, {
        timeout: 5000,
        interval: 50,
        what: 'the successor reported over the limit',
      });
      t.match(
        output(),
        new RegExp(
          `Worker ${recycled.threadId} \\(slot 0\\) uses \\d+ MB of heap, over maxMemoryRestart \\(${LIMIT_MB} MB\\) \\d+ s after it replaced a worker recycled for the same: it is left serving, not recycled again`,
        ),
        'a warning says why it is left',
      );
      await observeFor(3000);
      const after = await probe(health);
      t.same(
        after.report.workers.map((w) => [w.threadId, w.status]),
        [[recycled.threadId, 'serving']],
        'still the same worker, serving',
      );
      const final = await scrape(metrics);
      t.equal(metricValue(final, 'socketnaut_worker_memory_restarts_total'), 1, 'still one memory restart');
      t.equal(metricValue(final, 'socketnaut_worker_memory_over_limit_total'), 1, 'reported once');

      loading = false;
      await Promise.all(clients);
      const total = [...servedBy.values()].reduce((sum, n) => sum + n, 0);
      t.same(failures, [], `0 failed requests of ${total + failures.length}`);
      t.ok(
        (servedBy.get(first!.threadId) ?? 0) > 0 && (servedBy.get(recycled.threadId) ?? 0) > 0,
        'served by the old worker, then the new',
      );
    },
  );
}
