import { EventEmitter } from 'node:events';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { MessageChannel, type Worker } from 'node:worker_threads';
import t, { type Test } from 'tap';
import type { LeastLoadedBalancer as Balancer } from '../../lib/balancers/least-loaded.ts';
import type { WorkerRecord as Record } from '../../lib/main/worker-record.ts';
import { waitFor } from '../helpers.ts';

// Internal: two least-loaded balancers (the public port's and a shared port's) each read the workers'
// event loops over windows of their own: one's reading does not shorten the other's.
const { LeastLoadedBalancer } = (await import(
  new URL('../../dist/lib/balancers/least-loaded.js', import.meta.url).href
)) as { LeastLoadedBalancer: typeof Balancer };
const { WorkerRecord } = (await import(new URL('../../dist/lib/main/worker-record.js', import.meta.url).href)) as {
  WorkerRecord: typeof Record;
};

/** A thread whose event loop the test runs: `busy` and `idle` add to its totals, as time passes in it. */
class FakeWorker extends EventEmitter {
  static #nextThreadId = 5000;
  readonly threadId = FakeWorker.#nextThreadId++;
  #total = { idle: 0, active: 0 };

  busy(ms: number): void {
    this.#total.active += ms;
  }

  idle(ms: number): void {
    this.#total.idle += ms;
  }

  // As node:perf_hooks does: the totals so far, or the difference between two readings.
  readonly performance = {
    eventLoopUtilization: (now?: EventLoopUtilization, before?: EventLoopUtilization): EventLoopUtilization => {
      const idle = now && before ? now.idle - before.idle : this.#total.idle;
      const active = now && before ? now.active - before.active : this.#total.active;
      return { idle, active, utilization: idle + active === 0 ? 0 : active / (idle + active) };
    },
  };
}

/** A real worker record over a fake thread, noting every mark it is read with and what it answered. */
function recordOf(t: Test, id: number): { record: Record; worker: FakeWorker; readings: [string, number][] } {
  const worker = new FakeWorker();
  const { port1, port2 } = new MessageChannel();
  t.teardown(() => port1.close());
  t.teardown(() => port2.close());
  const origin = { id, slot: id - 1, restarts: 0, succession: undefined, heartbeat: undefined };
  const record = new WorkerRecord(origin, worker as unknown as Worker, port1);
  const readings: [string, number][] = [];
  const read = record.eventLoopUtilization.bind(record);
  record.eventLoopUtilization = (mark: string, minInterval?: number) => {
    const value = read(mark, minInterval);
    readings.push([mark, value]);
    return value;
  };
  return { record, worker, readings };
}

/** The balancer reads again on its next pick once this long has passed; it reads every 5 ms. */
const SAMPLE_MS = 5;

t.test("each least-loaded balancer reads the workers' loops over windows of its own", async (t) => {
  const a = recordOf(t, 1);
  const b = recordOf(t, 2);
  const candidates = [a.record, b.record];
  const publicPort = new LeastLoadedBalancer();
  const sharedPort = new LeastLoadedBalancer();
  t.teardown(() => publicPort.close());
  t.teardown(() => sharedPort.close());

  // Each takes its first reading, where its windows begin.
  publicPort.pick(candidates);
  sharedPort.pick(candidates);
  t.equal(a.readings.length, 2, 'each balancer read worker a once');
  const [publicMark, sharedMark] = a.readings.map(([mark]) => mark);
  t.not(publicMark, sharedMark, 'the two balancers read with distinct marks');
  // Their timers would read in the background; the readings below are made by picks alone.
  publicPort.close();
  sharedPort.close();
  const pickedAt = performance.now();
  await waitFor(() => performance.now() - pickedAt > SAMPLE_MS, { what: 'the sampling interval past' });

  // Worker a is busy for 100 ms while b idles; the public port's balancer reads that.
  a.worker.busy(100);
  b.worker.idle(100);
  a.readings.length = 0;
  t.equal(publicPort.pick(candidates), b.record, 'the public port sees a busy, and picks b');
  t.same(a.readings, [[publicMark, 1]], 'it read a as fully busy over its window');

  // Then both idle for 10 ms: over the shared port's window, which began before the busy time, a
  // was busy 100 ms of 110.
  a.worker.idle(10);
  b.worker.idle(10);
  a.readings.length = 0;
  t.equal(sharedPort.pick(candidates), b.record, 'the shared port sees a busy too, and picks b');
  t.equal(a.readings.length, 1, 'it read a once');
  const [mark, value] = a.readings[0]!;
  t.equal(mark, sharedMark, 'with its own mark');
  t.ok(Math.abs(value - 100 / 110) < 1e-9, `over its own window: a was busy 100 ms of 110 (read ${value})`);
});
