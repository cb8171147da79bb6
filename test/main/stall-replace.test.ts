import t from 'tap';
import type { ServiceProxyAgent } from 'socketnaut';
import { fixture, pace, request, requestJSON, startProxy, transports, waitFor, withDeadline } from '../helpers.ts';
import { healthURL, probe } from '../health-report.ts';
import { startLauncher } from '../launcher.ts';

// A worker whose handler never returns (`for (;;);`) gets no new connection once its event loop has
// been quiet for 1 s, whatever the balancer, and is replaced after stallTimeout. Round-robin and
// ip-hash are the balancers that would keep sending it connections: least-connections and
// least-loaded already shun a worker holding a connection or fully busy.
const app = fixture('health-app.js').pathname;
const STALL_TIMEOUT = 2000;
const REQUESTS = 40;

interface Outcome {
  sentAt: number;
  threadId: number | 'failed';
}

for (const transport of transports) {
  for (const balance of ['round-robin', 'ip-hash'] as const) {
    t.test(
      `${transport}, ${balance}: a hung worker gets no new connection after 1 s, and is replaced after stallTimeout`,
      async (t) => {
        const launcher = await startLauncher(t, [
          '--workers',
          '2',
          '--transport',
          transport,
          '--balance',
          balance,
          '--stall-timeout',
          String(STALL_TIMEOUT),
          '--health',
          '127.0.0.1:0',
          app,
        ]);
        const health = await healthURL(launcher);
        const before = await probe(health);
        t.equal(before.status, 200);
        t.same(
          before.report.workers.map((w) => w.status),
          ['serving', 'serving'],
        );
        const initial = new Set(before.report.workers.map((w) => w.threadId));
        // ip-hash sends every request from 127.0.0.1 to one worker: the one that will hang.
        const sticky =
          balance === 'ip-hash' ? (await requestJSON<{ threadId: number }>(launcher.port)).threadId : undefined;

        const hang = request(launcher.port, { path: '/hang' }).then(
          () => 'answered',
          () => 'lost with its worker',
        );
        const hungAt = performance.now();

        // A request every 20 ms throughout, each left to finish (or fail) on its own.
        const background: Promise<Outcome>[] = [];
        let loading = true;
        const load = (async () => {
          while (loading) {
            const sentAt = performance.now();
            background.push(
              withDeadline(requestJSON<{ threadId: number }>(launcher.port), 5000, 'a background request').then(
                (reply) => ({ sentAt, threadId: reply.threadId }),
                () => ({ sentAt, threadId: 'failed' as const }),
              ),
            );
            await pace(20);
          }
        })();
        t.teardown(() => {
          loading = false;
        });

        const stalled = await waitFor(
          async () => (await probe(health)).report.workers.find((w) => w.status === 'stalled'),
          {
            timeout: 1600,
            interval: 10,
            what: 'the hung worker reported stalled',
          },
        );
        const detectedAt = performance.now();
        t.ok(detectedAt - hungAt < 1600, `stalled ${Math.round(detectedAt - hungAt)} ms after the hang`);
        t.ok(initial.has(stalled.threadId), 'one of the two workers');
        if (sticky !== undefined) t.equal(stalled.threadId, sticky, "the worker ip-hash gives this client's address");
        t.equal((await probe(health, '/ready')).status, 503, '/ready: fewer than minWorkers serve');
        t.equal((await probe(health, '/live')).status, 200, '/live: the other worker still turns');

        const servedBy: number[] = [];
        for (let i = 0; i < REQUESTS; i++) {
          servedBy.push(
            (await withDeadline(requestJSON<{ threadId: number }>(launcher.port), 1000, `request ${i + 1}`)).threadId,
          );
        }
        t.equal(servedBy.length, REQUESTS, `${REQUESTS} of ${REQUESTS} new requests served`);
        t.equal(servedBy.filter((id) => id === stalled.threadId).length, 0, 'none by the hung worker');

        const replaced = await waitFor(
          async () => {
            const { report } = await probe(health);
            const serving = report.workers.filter((w) => w.status === 'serving');
            return (
              report.workers.length === 2 &&
              serving.length === 2 &&
              serving.some((w) => !initial.has(w.threadId)) &&
              serving
            );
          },
          {
            timeout: Math.max(0, hungAt + STALL_TIMEOUT + 3000 - performance.now()),
            interval: 20,
            what: 'two workers serving, one of them new',
          },
        );
        const successor = replaced.find((w) => !initial.has(w.threadId))!;
        t.equal(successor.slot, stalled.slot, "the successor took the hung worker's slot");
        t.notOk(
          replaced.some((w) => w.threadId === stalled.threadId),
          'the hung worker is gone',
        );
        const stopped = new RegExp(
          `Worker ${stalled.threadId} \\(slot ${stalled.slot}\\) is stopped: its event loop has not turned for (\\d+) ms`,
        );
        const stuckFor = Number(stopped.exec(launcher.stdout() + launcher.stderr())?.[1]);
        t.ok(stuckFor >= STALL_TIMEOUT, `a warning names it and how long it was stuck (${stuckFor} ms)`);
        t.equal(
          await withDeadline(hang, 2000, 'the hung request'),
          'lost with its worker',
          'the connection it held was lost with it',
        );

        loading = false;
        await load;
        const outcomes = await Promise.all(background);
        const sinceDetected = outcomes.filter((o) => o.sentAt >= detectedAt);
        t.ok(sinceDetected.length >= 20, `${sinceDetected.length} background requests sent since the stall was seen`);
        t.same(
          sinceDetected.filter((o) => o.threadId === 'failed'),
          [],
          'every one of them served: the process never stopped serving',
        );
        t.equal(sinceDetected.filter((o) => o.threadId === stalled.threadId).length, 0, 'none by the hung worker');
      },
    );
  }
}

// From code, with stats() and agents: a loop blocked for 2 s is stalled for a while and then serves
// again, unreplaced, within a stallTimeout of 3 s.
for (const transport of transports) {
  t.test(`${transport}: a worker whose loop turns again gets connections again, and is not replaced`, async (t) => {
    const { proxy, port } = await startProxy(t, {
      workerURL: fixture('health-app.js'),
      workerCount: 2,
      transport,
      balance: 'round-robin',
      stallTimeout: 3000,
    });
    const threads = new Set(proxy.agents.map((a) => a.threadId));
    const blocking = requestJSON<{ threadId: number }>(port, { path: '/spin?ms=2000' });
    const stalled = await waitFor(() => proxy.agents.find((a) => a.status === 'stalled'), {
      timeout: 1600,
      what: 'a stalled agent',
    });
    t.equal(stalled.state, 'ready', "its life-cycle state is still 'ready'");
    t.ok(stalled.heartbeatAgeMs! >= 1000, `its heartbeat is ${stalled.heartbeatAgeMs} ms old`);
    const whileStalled = await proxy.stats();
    t.equal(whileStalled.workers.find((w) => w.threadId === stalled.threadId)?.status, 'stalled', 'stats() says so');
    t.equal(whileStalled.stalls, 1, 'one stall counted');
    for (let i = 0; i < 10; i++)
      t.not(
        (await requestJSON<{ threadId: number }>(port)).threadId,
        stalled.threadId,
        `request ${i + 1}: another worker`,
      );

    const answer = await withDeadline(blocking, 3000, 'the blocking request');
    t.equal(answer.threadId, stalled.threadId, 'the blocking request finishes on its worker');
    await waitFor(() => stalled.status === 'serving', { timeout: 500, what: 'the worker serving again' });
    const servedBy = new Set<number>();
    for (let i = 0; i < 10; i++) servedBy.add((await requestJSON<{ threadId: number }>(port)).threadId);
    t.ok(servedBy.has(stalled.threadId), 'it takes connections again');
    const stats = await proxy.stats();
    t.same(new Set(proxy.agents.map((a: ServiceProxyAgent) => a.threadId)), threads, 'no worker was replaced');
    t.equal(stats.stalls, 1);
    t.equal(stats.stallRestarts, 0, 'no stall restart');
    t.equal(stats.restarts, 0);
    t.same(
      stats.workers.map((w) => w.status),
      ['serving', 'serving'],
    );
  });
}
