import t from 'tap';
import { fixture, observeFor, pace, requestJSON, transports, waitFor } from '../helpers.ts';
import { healthURL, metricsURL, metricValue, probe, scrape } from '../health-report.ts';
import { startLauncher } from '../launcher.ts';

// A loop that is busy but still turns is never taken for a stall: every request here spins 50 ms of
// CPU synchronously, from so many clients at once that each worker has some 20 waiting, and one turn
// of its event loop runs them all, for about a second. A watch that heard only from the loop's timers
// would take that for a stall; each request begun is progress too.
const app = fixture('health-app.js').pathname;
const LOAD_MS = 10_000;
const CLIENTS = 40;

for (const transport of transports) {
  t.test(`${transport}: a CPU-bound app under load for 10 s: no worker is marked stalled, none replaced`, async (t) => {
    const launcher = await startLauncher(t, [
      '--workers',
      '2',
      '--transport',
      transport,
      '--stall-timeout',
      '2000',
      '--health',
      '127.0.0.1:0',
      '--metrics',
      '127.0.0.1:0',
      app,
    ]);
    const health = await healthURL(launcher);
    const metrics = await metricsURL(launcher);
    const threads = new Set((await probe(health)).report.workers.map((w) => w.threadId));

    let served = 0;
    let failed = 0;
    let loading = true;
    t.teardown(() => {
      loading = false;
    });
    const clients = Array.from({ length: CLIENTS }, async () => {
      while (loading) {
        await requestJSON(launcher.port, { path: '/spin?ms=50' }).then(
          () => served++,
          () => failed++,
        );
      }
    });
    // What the probes see meanwhile, every 50 ms.
    const seen = new Set<string>();
    let oldestHeartbeat = 0;
    const watching = (async () => {
      while (loading) {
        for (const worker of (await probe(health)).report.workers) {
          seen.add(worker.status);
          oldestHeartbeat = Math.max(oldestHeartbeat, worker.heartbeatAgeMs ?? Infinity);
        }
        await pace(50);
      }
    })();
    await observeFor(LOAD_MS);
    loading = false;
    await Promise.all([...clients, watching]);

    t.comment(`${served} requests in ${LOAD_MS} ms; oldest heartbeat seen ${oldestHeartbeat} ms`);
    t.ok(served >= (LOAD_MS / 50) * 0.5, `${served} requests served: both workers were busy`);
    t.equal(failed, 0, 'none failed');
    t.same([...seen], ['serving'], 'every worker serving at every look');
    t.ok(oldestHeartbeat < 1000, `no heartbeat ever 1 s old (oldest ${oldestHeartbeat} ms)`);
    const page = await scrape(metrics);
    t.equal(metricValue(page, 'socketnaut_worker_stalls_total'), 0, 'no stall counted');
    t.equal(metricValue(page, 'socketnaut_worker_stall_restarts_total'), 0, 'no stall restart');
    t.equal(metricValue(page, 'socketnaut_worker_restarts_total'), 0, 'no restart');
    t.same(new Set((await probe(health)).report.workers.map((w) => w.threadId)), threads, 'the same two workers');
    t.notMatch(launcher.stdout() + launcher.stderr(), /has not turned|stalled/, 'nothing logged about a stall');

    // The watch was on all along: a loop that really stops is seen at once.
    void requestJSON(launcher.port, { path: '/hang' }).catch(() => {});
    await waitFor(async () => (await probe(health)).report.workers.some((w) => w.status === 'stalled'), {
      timeout: 1600,
      what: 'a hung worker seen stalled',
    });
    t.pass('a hung worker is seen stalled, in the same process');
  });
}
