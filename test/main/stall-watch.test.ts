import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import t, { type Test } from 'tap';
import type { Logger } from 'streams-logger';
import type { WorkerPool as Pool } from '../../lib/main/pool.ts';
import type { StallWatch as Watch } from '../../lib/main/stall-watch.ts';
import type { WorkerRecord as Handle } from '../../lib/main/worker-record.ts';
import type { FromWorker, ToWorker, WorkerBootData } from '../../lib/protocol/messages.ts';
import { observeFor, waitFor } from '../helpers.ts';

// Internal: the stall watch over a real pool of stand-in workers, whose heartbeats the test writes.
const dist = (file: string): string => new URL(`../../dist/lib/${file}`, import.meta.url).href;
const { WorkerPool } = (await import(dist('main/pool.js'))) as { WorkerPool: typeof Pool };
const { StallWatch, STALL_MS } = (await import(dist('main/stall-watch.js'))) as {
  StallWatch: typeof Watch;
  STALL_MS: number;
};
const { WorkerRecord } = (await import(dist('main/worker-record.js'))) as { WorkerRecord: typeof Handle };
const { HEARTBEAT_TURN, heartbeatClock } = (await import(
  dist('protocol/messages.js')
)) as typeof import('../../lib/protocol/messages.ts');

let nextThreadId = 5000;

/** A thread that exits when stopped; its event loop reads as never idle, so only its beats show life. */
class FakeWorker extends EventEmitter {
  readonly threadId = nextThreadId++;
  terminated = false;
  readonly performance = { eventLoopUtilization: () => ({ idle: 0, active: 0, utilization: 0 }) };

  terminate(): Promise<number> {
    this.terminated = true;
    setImmediate(() => this.emit('exit', 1));
    return Promise.resolve(1);
  }
}

interface Fake {
  handle: Handle;
  worker: FakeWorker;
  beat(): void;
  post(message: FromWorker): void;
}

function harness(t: Test, stallTimeout: number) {
  const spawned: Fake[] = [];
  const warnings: string[] = [];
  const ports: MessagePort[] = [];
  const log = {
    level: 0,
    debug() {},
    info() {},
    error() {},
    warn: (m: string) => warnings.push(m),
  } as unknown as Logger;
  const pool = new WorkerPool({
    minWorkers: 2,
    maxWorkers: 2,
    workerOptions: {},
    workerStartTimeout: 60_000,
    idleTimeout: 60_000,
    shutdownTimeout: 60_000,
    heartbeats: true,
    boot: () => ({}) as Omit<WorkerBootData, 'port' | 'heartbeat'>,
    log,
    reports: {
      closed() {},
      listen() {},
      publicListen() {},
      unlisten() {},
      listenerReturned() {},
      proxyHeaderRejected() {},
      handoffLatencies() {},
      sessionIssued() {},
      connectionRefused() {},
      processCall() {},
      warning() {},
    },
    spawn: (origin, boot) => {
      const { port1, port2 } = new MessageChannel();
      ports.push(port1, port2);
      const worker = new FakeWorker();
      const handle = new WorkerRecord(origin, worker as unknown as Worker, port1);
      const cells = new Int32Array(boot.heartbeat!);
      port2.on('message', (message: ToWorker) => {
        if (message.type === 'may-end') void worker.terminate();
      });
      spawned.push({
        handle,
        worker,
        beat: () => Atomics.store(cells, HEARTBEAT_TURN, heartbeatClock()),
        post: (m) => port2.postMessage(m),
      });
      return handle;
    },
  });
  const watch = new StallWatch(pool, { stallTimeout, drainTimeout: 1000, log });
  t.teardown(() => {
    watch.close();
    pool.close();
    for (const port of ports) port.close();
  });
  return { pool, watch, spawned, warnings };
}

async function ready(pool: Pool, fake: Fake): Promise<void> {
  fake.post({ type: 'ready' });
  await waitFor(() => fake.handle.state === 'ready');
}

/** Beats for `fake` every 50 ms until the test ends or `stop()` is called. */
function keepBeating(t: Test, fake: Fake): () => void {
  fake.beat();
  const timer = setInterval(() => fake.beat(), 50);
  t.teardown(() => clearInterval(timer));
  return () => clearInterval(timer);
}

t.test('a quiet worker leaves the ready list after 1 s, and returns as soon as it beats', async (t) => {
  const { pool, watch, spawned, warnings } = harness(t, 10_000);
  const resumed: Handle[] = [];
  pool.on('worker-resumed', (handle: Handle) => resumed.push(handle));
  pool.start();
  watch.start();
  const [a, b] = spawned as [Fake, Fake];
  await ready(pool, a);
  await ready(pool, b);
  keepBeating(t, b);
  a.beat();
  const quietSince = performance.now();
  await waitFor(() => a.handle.stalled, { timeout: STALL_MS + 500, what: 'a marked stalled' });
  const after = performance.now() - quietSince;
  t.ok(after >= STALL_MS - 5, `marked after ${Math.round(after)} ms of quiet, not before 1 s`);
  t.same(pool.ready, [b.handle], 'only the other worker takes connections');
  t.equal(a.handle.status, 'stalled');
  t.equal(a.handle.state, 'ready', 'still ready in its life cycle');
  t.equal(watch.counters.stalls, 1);
  t.match(warnings, [
    new RegExp(`Worker ${a.worker.threadId} \\(slot 0\\): its event loop has not turned for \\d+ ms`),
  ]);

  a.beat();
  await waitFor(() => !a.handle.stalled, { timeout: 300, what: 'a serving again' });
  t.same(pool.ready, [b.handle, a.handle], 'back in the ready list');
  t.same(resumed, [a.handle], "'worker-resumed', so that waiting connections go to it");
  t.equal(a.handle.status, 'serving');
  t.equal(spawned.length, 2, 'nothing replaced');
});

t.test('a worker stalled for stallTimeout: its successor starts in its slot, then it is stopped', async (t) => {
  const { pool, watch, spawned, warnings } = harness(t, 1500);
  pool.start();
  watch.start();
  const [a, b] = spawned as [Fake, Fake];
  await ready(pool, a);
  await ready(pool, b);
  keepBeating(t, b);
  a.beat();
  await waitFor(() => spawned.length === 3, { timeout: 2500, what: 'a successor started' });
  const successor = spawned[2]!;
  t.equal(successor.handle.slot, a.handle.slot, "in the stalled worker's slot");
  t.ok(a.handle.replacing, 'the stalled worker is being replaced');
  await observeFor(200);
  t.equal(a.worker.terminated, false, 'not stopped before its successor serves');
  keepBeating(t, successor);
  const exited = new Promise<string>((resolve) =>
    pool.on('worker-exit', (handle: Handle, _code: number, reason: string) => handle === a.handle && resolve(reason)),
  );
  await ready(pool, successor);
  t.match(await exited, /^stalled: its event loop had not turned for \d+ ms$/, "the exit's reason");
  t.equal(a.worker.terminated, true, 'stopped');
  t.equal(pool.restarts, 0, 'not counted as a crash');
  t.equal(watch.counters.stallRestarts, 1);
  t.same(pool.ready, [b.handle, successor.handle]);
  t.match(
    warnings.at(-1),
    new RegExp(`Worker ${a.worker.threadId} \\(slot 0\\) is stopped: its event loop has not turned for \\d+ ms`),
  );
  await observeFor(200);
  t.equal(spawned.length, 3, 'the successor was the only new worker');
});

t.test('a worker that turns again while its successor starts drains instead of being stopped', async (t) => {
  const { pool, watch, spawned } = harness(t, 1000);
  pool.start();
  watch.start();
  const [a, b] = spawned as [Fake, Fake];
  await ready(pool, a);
  await ready(pool, b);
  keepBeating(t, b);
  a.beat();
  await waitFor(() => spawned.length === 3, { timeout: 2000, what: 'a successor started' });
  keepBeating(t, a);
  await waitFor(() => !a.handle.stalled, { timeout: 300, what: 'a turning again' });
  keepBeating(t, spawned[2]!);
  await ready(pool, spawned[2]!);
  await waitFor(() => a.handle.state === 'retiring', { timeout: 500, what: 'a retiring' });
  t.equal(a.worker.terminated, false, 'told to retire, not stopped');
});

t.test('when the main thread itself was held up, stale heartbeats are not taken for stalls', async (t) => {
  const { pool, watch, spawned } = harness(t, 1000);
  pool.start();
  watch.start();
  const [a, b] = spawned as [Fake, Fake];
  await ready(pool, a);
  await ready(pool, b);
  a.beat();
  b.beat();
  // Nothing runs on this thread for 1.5 s, the watch's timer included, as in a frozen process.
  const until = performance.now() + 1500;
  while (performance.now() < until);
  // The workers beat again as soon as the process runs, just after the watch's overdue check.
  await new Promise((resolve) => setTimeout(resolve, 1));
  const stopA = keepBeating(t, a);
  const stopB = keepBeating(t, b);
  await observeFor(600);
  stopA();
  stopB();
  t.equal(watch.counters.stalls, 0, 'no stall');
  t.same(pool.ready, [a.handle, b.handle]);
  t.equal(spawned.length, 2, 'nothing replaced');
});
