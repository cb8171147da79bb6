import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import t, { type Test } from 'tap';
import type { Logger } from 'streams-logger';
import type { LocalCounts as Counts } from '../../lib/main/admission-counts.ts';
import type { ConnectionLedger as Ledger } from '../../lib/main/ledger.ts';
import type { PoolSettings, WorkerPool as Pool, WorkerReports } from '../../lib/main/pool.ts';
import type { WorkerRecord as Handle } from '../../lib/main/worker-record.ts';
import type { FromWorker, ToWorker, WorkerBootData } from '../../lib/protocol/messages.ts';
import { observeFor, waitFor, withDeadline } from '../helpers.ts';
import { skipUnlessSupported } from '../transport-support.ts';

// Internal: the pool supervisor, tested without threads through its `spawn` setting.
const { WorkerPool, HEALTHY_UPTIME_MS, RESTART_BASE_DELAY_MS, RESTART_FACTOR } = (await import(
  new URL('../../dist/lib/main/pool.js', import.meta.url).href
)) as {
  WorkerPool: typeof Pool;
  HEALTHY_UPTIME_MS: number;
  RESTART_BASE_DELAY_MS: number;
  RESTART_FACTOR: number;
};
const { WorkerRecord } = (await import(new URL('../../dist/lib/main/worker-record.js', import.meta.url).href)) as {
  WorkerRecord: typeof Handle;
};
const { LocalCounts } = (await import(new URL('../../dist/lib/main/admission-counts.js', import.meta.url).href)) as {
  LocalCounts: typeof Counts;
};
const { ConnectionLedger } = (await import(new URL('../../dist/lib/main/ledger.js', import.meta.url).href)) as {
  ConnectionLedger: typeof Ledger;
};

let nextThreadId = 1000;

/** What the workers report beyond their own lives, heard as events. */
const reported = new EventEmitter();
const reports: WorkerReports = {
  closed: () => {},
  listen: () => {},
  publicListen: () => {},
  unlisten: () => {},
  listenerReturned: () => {},
  proxyHeaderRejected: () => reported.emit('proxy-header-rejected'),
  handoffLatencies: () => {},
  sessionIssued: () => {},
  connectionRefused: () => {},
  processCall: () => {},
  warning: () => {},
};

/** Stands in for a worker thread: exits on a later turn of the loop, once, as a thread does. */
class FakeWorker extends EventEmitter {
  readonly threadId = nextThreadId++;
  terminateCalls = 0;
  exitCode: number | undefined;
  readonly performance = { eventLoopUtilization: () => ({ idle: 0, active: 0, utilization: 0 }) };
  #exiting: Promise<number> | undefined;

  terminate(): Promise<number> {
    this.terminateCalls++;
    return this.exit(1);
  }

  exit(code: number): Promise<number> {
    this.#exiting ??= new Promise((resolve) =>
      setImmediate(() => {
        this.exitCode = code;
        this.emit('exit', code);
        resolve(code);
      }),
    );
    return this.#exiting;
  }
}

/** One started stand-in: the pool's handle, the fake thread, and the worker's end of its channel. */
interface Fake {
  handle: Handle;
  worker: FakeWorker;
  /** What the pool's boot() gave for it. */
  boot: Omit<WorkerBootData, 'port'>;
  /**
   * Told it may end ('may-end'), a worker whose loop is empty does so at once: unless its app still
   * has work (`busy`). Told to end now ('end'), it says what was pending and ends: unless its loop
   * is blocked (`blocked`).
   */
  busy: boolean;
  blocked: boolean;
  /** The worker's end: the test posts what a worker would. */
  port: MessagePort;
  received: ToWorker[];
  spawnedAt: number;
  post(message: FromWorker): void;
}

interface Harness {
  pool: Pool;
  spawned: Fake[];
  errors: string[];
  warnings: string[];
  /** Resolves with the next worker started. */
  nextSpawn(ms?: number): Promise<Fake>;
}

const quietLog = (errors: string[], warnings: string[]): Logger =>
  ({
    level: 0,
    debug() {},
    info() {},
    warn(message: string) {
      warnings.push(message);
    },
    error(message: string) {
      errors.push(message);
    },
  }) as unknown as Logger;

function harness(t: Test, settings: Partial<PoolSettings> & { onSpawn?: (fake: Fake) => void } = {}): Harness {
  const { onSpawn, ...overrides } = settings;
  const spawned: Fake[] = [];
  const errors: string[] = [];
  const warnings: string[] = [];
  const ports: MessagePort[] = [];
  const spawns = new EventEmitter();
  const spawn: PoolSettings['spawn'] = (origin, boot) => {
    const { port1, port2 } = new MessageChannel();
    ports.push(port1, port2);
    const worker = new FakeWorker();
    const handle = new WorkerRecord(origin, worker as unknown as Worker, port1);
    const fake: Fake = {
      handle,
      worker,
      boot,
      busy: false,
      blocked: false,
      port: port2,
      received: [],
      spawnedAt: performance.now(),
      post: (message) => port2.postMessage(message),
    };
    port2.on('message', (message: ToWorker) => {
      fake.received.push(message);
      // As the worker bootstrap does: it ends itself, so that the app's 'exit' listeners run.
      if (message.type === 'may-end' && !fake.busy) void worker.exit(0);
      if (message.type === 'end' && !fake.blocked) {
        port2.postMessage({ type: 'pending', resources: ['Timeout', 'TCPSocketWrap', 'Timeout'] });
        void worker.exit(0);
      }
    });
    spawned.push(fake);
    onSpawn?.(fake);
    spawns.emit('spawn', fake);
    return handle;
  };
  const pool = new WorkerPool({
    minWorkers: 1,
    maxWorkers: 4,
    workerOptions: {},
    workerStartTimeout: 60_000,
    idleTimeout: 60_000,
    shutdownTimeout: 60_000,
    boot: (id) => ({ pipePath: `/nonexistent/fake-${id}.sock` }) as Omit<WorkerBootData, 'port'>,
    log: quietLog(errors, warnings),
    reports,
    spawn,
    ...overrides,
  });
  t.teardown(() => {
    pool.close();
    for (const port of ports) port.close();
  });
  return {
    pool,
    spawned,
    errors,
    warnings,
    nextSpawn: (ms = 5000) => until<[Fake]>(spawns, 'spawn', () => true, ms).then(([fake]) => fake),
  };
}

/** The next `event` from `emitter` whose arguments pass `accept`; rejects after `ms`. */
async function until<A extends unknown[]>(
  emitter: EventEmitter,
  event: string,
  accept: (...args: A) => boolean = () => true,
  ms = 5000,
): Promise<A> {
  let listener: ((...args: unknown[]) => void) | undefined;
  const seen = new Promise<A>((resolve) => {
    listener = (...args: unknown[]): void => {
      if (accept(...(args as A))) resolve(args as A);
    };
    emitter.on(event, listener);
  });
  try {
    return await withDeadline(seen, ms, `'${event}'`);
  } finally {
    emitter.off(event, listener!);
  }
}

/** Plays the worker saying it serves, and waits until the pool has heard it. */
async function makeReady(pool: Pool, fake: Fake): Promise<void> {
  const heard = until<[Handle]>(pool, 'worker-ready', (handle) => handle === fake.handle);
  fake.post({ type: 'ready' });
  await heard;
}

function exitOf(pool: Pool, fake: Fake, ms = 5000): Promise<[Handle, number, string]> {
  return until<[Handle, number, string]>(pool, 'worker-exit', (handle) => handle === fake.handle, ms);
}

const retired = (fake: Fake): boolean => fake.received.some((message) => message.type === 'retire');

/**
 * Whether the pool has let the worker end: told it that it may end itself (the handle notes that at
 * once, the message arrives later) or stopped it.
 */
const ended = (fake: Fake): boolean => fake.handle.endAllowed || fake.worker.terminateCalls > 0;

t.test('start() starts minWorkers, each in its own slot, none ready until it says so', async (t) => {
  const { pool, spawned } = harness(t, { minWorkers: 3, maxWorkers: 5 });
  t.equal(pool.size, 0);
  pool.start();
  t.equal(spawned.length, 3, 'minWorkers started');
  t.same(
    spawned.map((f) => [f.handle.id, f.handle.slot, f.handle.restarts, f.handle.state]),
    [
      [1, 0, 0, 'starting'],
      [2, 1, 0, 'starting'],
      [3, 2, 0, 'starting'],
    ],
  );
  t.same(
    spawned.map((f) => f.boot.pipePath),
    ['/nonexistent/fake-1.sock', '/nonexistent/fake-2.sock', '/nonexistent/fake-3.sock'],
    'boot data per id',
  );
  t.equal(pool.size, 3);
  t.equal(pool.starting, 3);
  t.same(pool.ready, [], 'none ready yet');
  for (const fake of spawned) await makeReady(pool, fake);
  t.same(
    pool.ready,
    spawned.map((f) => f.handle),
    'ready in start order',
  );
  t.equal(pool.starting, 0);
  t.ok(
    spawned.every((f) => f.handle.state === 'ready' && f.handle.readyAt > 0),
    'each ready, with readyAt set',
  );
  t.same(
    [...pool.records],
    spawned.map((f) => f.handle),
  );
  // A second 'ready' from a worker changes nothing.
  let extra = 0;
  const onReady = (): void => {
    extra++;
  };
  pool.on('worker-ready', onReady);
  t.teardown(() => pool.off('worker-ready', onReady));
  // Messages keep their order: once the one after it is heard, the repeated 'ready' was handled.
  const after = until(reported, 'proxy-header-rejected');
  spawned[0]!.post({ type: 'ready' });
  spawned[0]!.post({ type: 'proxy-header-rejected' });
  await after;
  t.equal(pool.ready.length, 3);
  t.equal(extra, 0, "a repeated 'ready' is not announced again");
});

t.test('grow() respects maxWorkers; a successor in a reload may exceed it', async (t) => {
  const { pool, spawned } = harness(t, { minWorkers: 1, maxWorkers: 3 });
  pool.start();
  t.equal(spawned.length, 1);
  t.ok(pool.grow(), 'second');
  t.ok(pool.grow(), 'third');
  t.equal(pool.grow(), undefined, 'no fourth');
  t.equal(pool.size, 3);
  t.same(
    spawned.map((f) => f.handle.slot),
    [0, 1, 2],
  );
  pool.growForWaiting();
  t.equal(pool.size, 3, 'growForWaiting stays within maxWorkers');
  const successor = pool.grow(spawned[1]!.handle);
  t.ok(successor, 'a successor is started at the bound');
  t.equal(successor!.slot, 1, "in its predecessor's slot");
  t.equal(pool.size, 4);
});

t.test('growIfAllBusy and growForWaiting start one worker at a time, only when needed', async (t) => {
  const { pool, spawned } = harness(t, { minWorkers: 1, maxWorkers: 3 });
  const ledger = new ConnectionLedger({ maxConnections: 0, maxConnectionsPerIp: 0, perIpPrefix: 64 });
  pool.start();
  pool.growForWaiting();
  t.equal(pool.size, 1, 'growForWaiting waits for the worker already starting');
  await makeReady(pool, spawned[0]!);
  pool.growIfAllBusy();
  t.equal(pool.size, 1, 'an idle ready worker can take the next connection');
  ledger.admit('');
  ledger.assign(spawned[0]!.handle.account);
  pool.growIfAllBusy();
  t.equal(pool.size, 2, 'every ready worker busy: one more');
  pool.growIfAllBusy();
  t.equal(pool.size, 2, 'not another while that one starts');
  await makeReady(pool, spawned[1]!);
  ledger.admit('');
  ledger.assign(spawned[1]!.handle.account);
  pool.growIfAllBusy();
  t.equal(pool.size, 3);
  await makeReady(pool, spawned[2]!);
  ledger.admit('');
  ledger.assign(spawned[2]!.handle.account);
  pool.growIfAllBusy();
  pool.growForWaiting();
  t.equal(pool.size, 3, 'never past maxWorkers');
});

t.test("a replacement takes the dead worker's slot; a retiring worker's slot is free for a newcomer", async (t) => {
  const { pool, spawned, nextSpawn } = harness(t, { minWorkers: 3, maxWorkers: 5 });
  pool.start();
  for (const fake of spawned) await makeReady(pool, fake);
  const replacement = nextSpawn(3000);
  void spawned[1]!.worker.exit(1);
  const fake = await replacement;
  t.equal(fake.handle.slot, 1, 'the crashed worker’s slot');
  t.equal(fake.handle.restarts, 1, 'with the slot’s restart count');
  t.equal(pool.restarts, 1);
  await makeReady(pool, fake);

  pool.retire(spawned[0]!.handle, undefined);
  t.equal(spawned[0]!.handle.state, 'retiring');
  const newcomer = pool.grow();
  t.equal(newcomer?.slot, 0, 'slot 0 is free while its worker retires');
  t.equal(newcomer?.restarts, 0, 'a retirement is not a restart');
  const other = pool.grow();
  t.equal(other?.slot, 3, 'the next free slot after that');
});

t.test('a worker that dies after serving HEALTHY_UPTIME_MS is replaced at once', async (t) => {
  const { pool, spawned } = harness(t, { minWorkers: 1, maxWorkers: 2 });
  pool.start();
  const first = spawned[0]!;
  await makeReady(pool, first);
  await waitFor(() => performance.now() - first.handle.readyAt >= HEALTHY_UPTIME_MS, HEALTHY_UPTIME_MS + 3000);
  const exit = exitOf(pool, first);
  void first.worker.exit(7);
  const [, code, reason] = await exit;
  // replenish() runs right after 'worker-exit' is emitted, before this continues.
  t.equal(code, 7);
  t.equal(reason, 'exited unexpectedly with code 7');
  t.equal(spawned.length, 2, 'replaced without delay');
  t.equal(pool.backingOff, false, 'no backoff');
  t.equal(pool.restarts, 1, 'counted as a restart');
  t.equal(first.handle.state, 'exited');
  t.notOk(pool.records.has(first.handle), 'the dead worker left the pool');
  t.same([spawned[1]!.handle.slot, spawned[1]!.handle.restarts], [0, 1]);
  await withDeadline(first.handle.portClosed, 2000, "the dead worker's channel closed");
  t.pass("the pool closed the dead worker's channel");
});

t.test('a worker that keeps dying while starting is restarted with exponential backoff', async (t) => {
  const { pool, spawned, nextSpawn } = harness(t, { minWorkers: 1, maxWorkers: 3 });
  const failures: Handle[] = [];
  pool.on('bootstrap-failure', (handle: Handle) => failures.push(handle));
  pool.start();
  const gaps: number[] = [];
  // Taken in the listener, before the pool sets its backoff timer: after an await it would be late.
  let exitedAt = 0;
  pool.on('worker-exit', () => {
    exitedAt = performance.now();
  });
  let fake = spawned[0]!;
  for (let round = 0; round < 4; round++) {
    const exit = exitOf(pool, fake);
    const respawn = nextSpawn(5000);
    if (round === 2) {
      // Serving for a moment is not enough: it still counts as a crash loop.
      await makeReady(pool, fake);
    }
    void fake.worker.exit(1);
    await exit;
    t.equal(pool.backingOff, true, `backing off after failure ${round + 1}`);
    t.equal(pool.size, 0, 'nothing running meanwhile');
    pool.growForWaiting();
    t.equal(pool.size, 0, 'growForWaiting does not jump the backoff');
    pool.replenish();
    t.equal(spawned.length, round + 1, 'nor does replenish');
    fake = await respawn;
    gaps.push(fake.spawnedAt - exitedAt);
    t.equal(pool.backingOff, false, 'the backoff timer has run');
  }
  const expected = gaps.map((_, i) => RESTART_BASE_DELAY_MS * RESTART_FACTOR ** i);
  t.comment(`restart delays ${gaps.map((g) => g.toFixed(0)).join(', ')} ms; expected ${expected.join(', ')} ms`);
  for (const [i, gap] of gaps.entries()) {
    t.ok(gap >= expected[i]! - 2, `restart ${i + 1} waited at least ${expected[i]} ms (${gap.toFixed(1)})`);
    t.ok(gap < expected[i]! + 1000, `and not much longer`);
  }
  t.ok(gaps[1]! > gaps[0]! && gaps[3]! > gaps[2]!, 'the delay grows');
  t.equal(failures.length, 3, "'bootstrap-failure' for each that never served, not for the one that did");
  t.equal(pool.restarts, 4);
  t.same(
    spawned.map((f) => f.handle.restarts),
    [0, 1, 2, 3, 4],
    'the slot’s restart count grows',
  );
  t.ok(spawned.every((f) => f.handle.slot === 0));
});

t.test("'bootstrap-failure' for a worker that exits before 'ready', with what it reported", async (t) => {
  const { pool, spawned } = harness(t, { minWorkers: 0, maxWorkers: 3 });
  const failures: Handle[] = [];
  pool.on('bootstrap-failure', (handle: Handle) => failures.push(handle));
  pool.start();
  t.equal(spawned.length, 0, 'minWorkers 0 starts none');

  const first = pool.grow()!;
  const fake = spawned.find((f) => f.handle === first)!;
  const error = {
    name: 'SyntaxError',
    message: 'Unexpected token',
    stack: 'SyntaxError: Unexpected token\n    at app.js:1',
    code: undefined,
  };
  fake.post({ type: 'bootstrap-error', error });
  await waitFor(() => first.error !== undefined);
  const exit = exitOf(pool, fake);
  void fake.worker.exit(1);
  const [, , reason] = await exit;
  t.same(failures, [first], "'bootstrap-failure' with the handle");
  t.same(first.error, error, 'the error it reported');
  t.equal(reason, 'failed to load: Unexpected token');
  t.equal(spawned.length, 1, 'minWorkers 0: nothing to replenish');

  const silent = pool.grow()!;
  const silentFake = spawned.find((f) => f.handle === silent)!;
  const silentExit = exitOf(pool, silentFake);
  void silentFake.worker.exit(3);
  t.equal((await silentExit)[2], 'exited unexpectedly with code 3');
  t.same(failures, [first, silent], 'also without an error');

  const served = pool.grow()!;
  const servedFake = spawned.find((f) => f.handle === served)!;
  await makeReady(pool, servedFake);
  const servedExit = exitOf(pool, servedFake);
  void servedFake.worker.exit(1);
  await servedExit;
  t.equal(failures.length, 2, "no 'bootstrap-failure' for a worker that had served");
});

t.test('a worker not serving within workerStartTimeout is stopped', async (t) => {
  const { pool, spawned, errors } = harness(t, { minWorkers: 0, maxWorkers: 1, workerStartTimeout: 30 });
  const failures: Handle[] = [];
  pool.on('bootstrap-failure', (handle: Handle) => failures.push(handle));
  pool.start();
  pool.grow();
  const [fake] = spawned;
  const [, , reason] = await exitOf(pool, fake!);
  t.equal(fake!.worker.terminateCalls, 1, 'terminated');
  t.equal(reason, 'exited unexpectedly with code 1');
  t.same(failures, [fake!.handle]);
  t.match(errors, [/did not start serving within 30 ms/]);
});

t.test('a retired worker that drained with no connection counted is ended', async (t) => {
  const { pool, spawned } = harness(t, { minWorkers: 0, maxWorkers: 2 });
  pool.start();
  pool.grow();
  const [fake] = spawned;
  await makeReady(pool, fake!);
  pool.retire(fake!.handle, undefined);
  t.equal(fake!.handle.state, 'retiring');
  t.same(pool.ready, [], 'no longer offered connections');
  await waitFor(() => retired(fake!));
  t.same(
    fake!.received.map((m) => m.type),
    ['retire'],
    'the worker was told to retire',
  );
  t.equal(ended(fake!), false, 'not ended before it drains');
  const exit = exitOf(pool, fake!);
  fake!.post({ type: 'drained' });
  const [, , reason] = await exit;
  t.equal(ended(fake!), true, 'ended once drained');
  t.equal(reason, 'retired');
  t.equal(pool.restarts, 0, 'a retirement is not a restart');
  t.equal(pool.size, 0);
  t.equal(spawned.length, 1, 'and not replaced (minWorkers 0)');
});

t.test('a drained worker still counted with connections is ended only once its account falls to 0', async (t) => {
  const { pool, spawned } = harness(t, { minWorkers: 0, maxWorkers: 2 });
  const ledger = new ConnectionLedger({ maxConnections: 0, maxConnectionsPerIp: 5, perIpPrefix: 64 });
  const counts = new LocalCounts();
  ledger.useCounts(counts);
  pool.start();
  pool.grow();
  const [fake] = spawned;
  const { account } = fake!.handle;
  await makeReady(pool, fake!);
  // One pipe connection reached the worker, another is still connecting to its Unix socket.
  ledger.admit('10.0.0.1');
  ledger.admit('10.0.0.2');
  ledger.assign(account);
  ledger.assign(account);
  ledger.delivered(account, '10.0.0.1');
  t.equal(fake!.handle.connections, 2);
  pool.retire(fake!.handle, undefined);
  fake!.post({ type: 'drained' });
  await waitFor(() => fake!.handle.drained);
  t.equal(ended(fake!), false, 'drained, but two connections counted: not ended');
  ledger.ended(account, 1, ['10.0.0.1']);
  t.equal(account.pending, 1);
  t.equal(ended(fake!), false, 'one still on its way: not ended');
  const exit = exitOf(pool, fake!);
  ledger.unassign(account);
  t.equal(ended(fake!), true, 'ended as soon as the account fell to 0');
  ledger.release('10.0.0.2');
  await exit;
  t.equal(counts.open, 0);
  t.equal(fake!.handle.state, 'exited');
});

t.test('a worker is told to retire once the connections on their way to it have reached it', async (t) => {
  const { pool, spawned } = harness(t, { minWorkers: 0, maxWorkers: 2 });
  const ledger = new ConnectionLedger({ maxConnections: 0, maxConnectionsPerIp: 0, perIpPrefix: 64 });
  pool.start();
  pool.grow();
  const [fake] = spawned;
  const { account } = fake!.handle;
  await makeReady(pool, fake!);
  // Two piped connections still connecting to its Unix socket.
  for (let i = 0; i < 2; i++) {
    ledger.admit('');
    ledger.assign(account);
  }
  pool.retire(fake!.handle, 'SIGTERM');
  t.equal(fake!.handle.state, 'retiring', 'it takes no more connections at once');
  t.same(pool.ready, []);
  ledger.delivered(account, '');
  // The message is not sent at all meanwhile: the handle would have posted it at once.
  await observeFor(50);
  t.notOk(retired(fake!), 'not told while one is still on its way');
  ledger.unassign(account);
  await waitFor(() => retired(fake!));
  t.pass('told once the last one came back');
});

t.test(
  'a drained worker whose last connection was one it accepted itself and gave back may end',
  { skip: skipUnlessSupported('handoff') },
  async (t) => {
    const { pool, spawned } = harness(t, { minWorkers: 0, maxWorkers: 2 });
    pool.start();
    pool.grow();
    const [fake] = spawned;
    let own = 1;
    fake!.handle.countOwnConnections({ open: () => own, total: () => 1 });
    await makeReady(pool, fake!);
    pool.retire(fake!.handle, undefined);
    fake!.post({ type: 'drained' });
    await waitFor(() => fake!.handle.drained);
    t.equal(ended(fake!), false, 'one it accepted itself is still counted');
    // It gives that one back, unread: counted out in shared memory, then posted.
    const server = net.createServer({ pauseOnConnect: true }).listen(0, '127.0.0.1');
    t.teardown(() => server.close());
    await once(server, 'listening');
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    t.teardown(() => client.destroy());
    const [socket] = (await once(server, 'connection')) as [net.Socket];
    own = 0;
    fake!.port.postMessage({ type: 'connection-refused', socket, own: true } satisfies FromWorker, [socket as never]);
    await waitFor(() => ended(fake!), { what: 'the worker told it may end' });
    t.pass('told it may end');
  },
);

t.test('a drained worker whose app still works ends at its deadline, saying what was pending', async (t) => {
  const { pool, spawned, warnings } = harness(t, { minWorkers: 0, maxWorkers: 2 });
  pool.start();
  pool.grow();
  const [fake] = spawned;
  fake!.busy = true;
  await makeReady(pool, fake!);
  const retiredAt = performance.now();
  pool.retire(fake!.handle, 'SIGTERM', 300);
  const exit = exitOf(pool, fake!, 5000);
  fake!.post({ type: 'drained' });
  await waitFor(() => fake!.received.some((message) => message.type === 'may-end'));
  t.equal(fake!.handle.state, 'retiring', 'told it may end, it goes on with its work');
  const [, , reason] = await exit;
  t.ok(performance.now() - retiredAt >= 290, 'until its deadline');
  t.same(
    fake!.received.map((message) => message.type),
    ['retire', 'may-end', 'end'],
    'then told to end now',
  );
  t.equal(fake!.worker.terminateCalls, 0, 'and it ended itself');
  t.equal(reason, 'retired');
  await waitFor(() => warnings.length > 0);
  t.match(
    warnings[0],
    /Worker \d+ \(slot 0\) was stopped at the shutdown timeout \(300 ms\) with work still pending: Timeout ×2, TCPSocketWrap/,
  );
});

t.test('a worker that does not end when told to at its deadline is stopped', async (t) => {
  const { pool, spawned } = harness(t, { minWorkers: 0, maxWorkers: 2 });
  pool.start();
  pool.grow();
  const [fake] = spawned;
  fake!.busy = true;
  fake!.blocked = true;
  await makeReady(pool, fake!);
  pool.retire(fake!.handle, undefined, 100);
  const exit = exitOf(pool, fake!, 5000);
  fake!.post({ type: 'drained' });
  const [, , reason] = await exit;
  t.ok(
    fake!.received.some((message) => message.type === 'end'),
    'it was told to end',
  );
  t.equal(fake!.worker.terminateCalls, 1, 'then terminated');
  t.equal(reason, 'retired');
  t.equal(pool.restarts, 0);
});

t.test('a worker that stops on its own has the shutdown timeout to end', async (t) => {
  const { pool, spawned } = harness(t, { minWorkers: 0, maxWorkers: 2, shutdownTimeout: 200 });
  pool.start();
  pool.grow();
  const [fake] = spawned;
  fake!.busy = true;
  await makeReady(pool, fake!);
  const exit = exitOf(pool, fake!, 5000);
  // Its app closed its server, and the worker drained.
  fake!.post({ type: 'stopped' });
  fake!.post({ type: 'drained' });
  await exit;
  t.same(
    fake!.received.map((message) => message.type),
    ['may-end', 'end'],
  );
});

t.test('a drained worker is ended when the last connection it held ends', async (t) => {
  const { pool, spawned } = harness(t, { minWorkers: 0, maxWorkers: 2 });
  const ledger = new ConnectionLedger({ maxConnections: 0, maxConnectionsPerIp: 0, perIpPrefix: 64 });
  pool.start();
  pool.grow();
  const [fake] = spawned;
  const { account } = fake!.handle;
  await makeReady(pool, fake!);
  ledger.admit('');
  ledger.assign(account);
  ledger.delivered(account, '');
  // The worker stopped on its own (its server closed), and drained.
  fake!.post({ type: 'stopped' });
  fake!.post({ type: 'drained' });
  await waitFor(() => fake!.handle.drained);
  t.equal(fake!.handle.state, 'retiring', "'stopped' moves a ready worker to retiring");
  t.same(pool.ready, [], 'and out of the ready list');
  t.equal(ended(fake!), false, 'not ended while it holds one');
  const exit = exitOf(pool, fake!);
  ledger.ended(account, 1);
  t.equal(ended(fake!), true, 'ended as soon as it ended');
  await exit;
});

t.test('replaceAll replaces each worker in its slot, and resolves once the old ones have exited', async (t) => {
  const replacing = { on: false };
  /** The old workers' states when each successor was started. */
  const oldStatesAtSpawn: string[][] = [];
  const { pool, spawned } = harness(t, {
    minWorkers: 2,
    maxWorkers: 2,
    // A successor serves as soon as it starts.
    onSpawn: (fake) => {
      if (!replacing.on) return;
      oldStatesAtSpawn.push(old.map((f) => f.handle.state));
      fake.post({ type: 'ready' });
    },
  });
  const old: Fake[] = [];
  pool.start();
  old.push(...spawned);
  for (const fake of old) await makeReady(pool, fake);
  replacing.on = true;
  const successorReadyAtRetire: boolean[] = [];
  for (const fake of old) {
    fake.port.on('message', (message: ToWorker) => {
      if (message.type !== 'retire') return;
      const successor = spawned.find((f) => f !== fake && f.handle.slot === fake.handle.slot && !old.includes(f));
      successorReadyAtRetire.push(successor?.handle.state === 'ready');
    });
  }
  let resolved = false;
  const replaced = pool.replaceAll(10_000, undefined).then(() => {
    resolved = true;
  });
  await waitFor(() => old.every(retired), 5000);
  t.equal(spawned.length, 4, 'one successor per worker');
  const successors = spawned.slice(2);
  t.same(
    successors.map((f) => f.handle.slot),
    old.map((f) => f.handle.slot),
    'each in its predecessor’s slot',
  );
  t.same(successorReadyAtRetire, [true, true], 'each old worker retired only once its successor served');
  t.same(
    oldStatesAtSpawn,
    [
      ['ready', 'ready'],
      ['retiring', 'ready'],
    ],
    'one at a time: the second successor started once the first old worker was retired',
  );
  t.equal(resolved, false, 'not resolved while the old workers are still draining');
  t.same(
    old.map((f) => f.handle.state),
    ['retiring', 'retiring'],
  );
  t.same(
    pool.ready,
    successors.map((f) => f.handle),
    'only the successors take connections',
  );
  for (const fake of old) fake.post({ type: 'drained' });
  await replaced;
  t.same(
    old.map((f) => f.handle.state),
    ['exited', 'exited'],
    'resolved once the old ones exited',
  );
  t.same(
    [...pool.records],
    successors.map((f) => f.handle),
  );
  t.equal(pool.restarts, 0);
  t.same(
    successors.map((f) => f.handle.restarts),
    [0, 0],
  );
});

t.test('replaceAll ends an old worker that does not drain within the timeout', async (t) => {
  const { pool, spawned } = harness(t, {
    minWorkers: 1,
    maxWorkers: 1,
    onSpawn: (fake) => {
      if (fake.handle.id > 1) fake.post({ type: 'ready' });
    },
  });
  pool.start();
  const [old] = spawned;
  await makeReady(pool, old!);
  await pool.replaceAll(50, undefined);
  t.ok(
    old!.received.some((message) => message.type === 'end'),
    'told to end after the timeout',
  );
  t.equal(old!.handle.state, 'exited');
  t.equal(spawned.length, 2);
  t.equal(spawned[1]!.handle.slot, 0);
});

// A handle's `serving` promise is what pool.whenReady() was; replaceAll waits on it.
t.test(
  "a handle's `serving` resolves when the worker serves and rejects with SOCKETNAUT_ERR_WORKER_EXITED if it exits first",
  async (t) => {
    const { pool, spawned } = harness(t, { minWorkers: 0, maxWorkers: 3 });
    pool.start();
    const good = pool.grow()!;
    const bad = pool.grow()!;
    const [goodFake, badFake] = spawned;
    goodFake!.post({ type: 'ready' });
    await withDeadline(good.serving, 5000, 'serving');
    t.pass('resolves once ready');
    const exit = exitOf(pool, badFake!);
    void badFake!.worker.exit(1);
    await t.rejects(withDeadline(bad.serving, 5000, 'serving'), {
      code: 'SOCKETNAUT_ERR_WORKER_EXITED',
      message: /exited unexpectedly with code 1/,
    });
    await exit;
    t.equal(bad.state, 'exited');
    // A successor that exits before it serves: the reload rejects with the same error.
    const replacing = pool.replaceAll(1000, undefined);
    await waitFor(() => spawned.length === 3);
    const successor = spawned[2]!;
    t.equal(successor.handle.slot, good.slot);
    void successor.worker.exit(1);
    await t.rejects(
      withDeadline(replacing, 5000, 'replaceAll'),
      { code: 'SOCKETNAUT_ERR_WORKER_EXITED' },
      'replaceAll rejects',
    );
    t.equal(good.state, 'ready', 'the old worker keeps serving');
    t.equal(retired(goodFake!), false, 'and was not retired');
  },
);

t.test('idle workers above minWorkers are retired after idleTimeout; busy ones and minWorkers are kept', async (t) => {
  const IDLE = 40;
  const { pool, spawned } = harness(t, { minWorkers: 1, maxWorkers: 4, idleTimeout: IDLE });
  const ledger = new ConnectionLedger({ maxConnections: 0, maxConnectionsPerIp: 0, perIpPrefix: 64 });
  pool.start();
  pool.grow();
  pool.grow();
  pool.grow();
  // The second worker holds a connection, from before any check could find it idle.
  const busy = spawned[1]!;
  ledger.admit('');
  ledger.assign(busy.handle.account);
  ledger.delivered(busy.handle.account, '');
  /** How long each had been idle when the pool retired it. */
  const idleAtRetire = new Map<Fake, number>();
  for (const fake of spawned) {
    fake.port.on('message', (m: ToWorker) => {
      if (m.type !== 'retire') return;
      idleAtRetire.set(fake, performance.now() - fake.handle.account.idleSince);
      fake.post({ type: 'drained' });
    });
  }
  for (const fake of spawned) await makeReady(pool, fake);
  await waitFor(() => spawned.filter(retired).length === 3, 5000);
  t.same(spawned.map(retired), [true, false, true, true], 'the idle ones retired, the busy one kept');
  for (const [fake, idle] of idleAtRetire)
    t.ok(idle >= IDLE - 1, `worker ${fake.handle.id} had been idle for idleTimeout (${idle.toFixed(0)} ms)`);
  await waitFor(() => pool.size === 1, 5000);
  t.same(pool.ready, [busy.handle], 'the busy worker still serves');
  t.equal(pool.restarts, 0);
  ledger.ended(busy.handle.account, 1);
  // The last worker, now idle, is at minWorkers: several checks pass without retiring it.
  await observeFor(IDLE * 6);
  t.equal(busy.handle.state, 'ready', 'minWorkers are never reaped');
  t.equal(retired(busy), false);
  t.equal(spawned.length, 4, 'nothing started in their place');
});

t.test('close() stops respawns', async (t) => {
  t.test('of a worker that exits after it', async (t) => {
    const { pool, spawned } = harness(t, { minWorkers: 1, maxWorkers: 2 });
    pool.start();
    await makeReady(pool, spawned[0]!);
    pool.close();
    const exit = exitOf(pool, spawned[0]!);
    void spawned[0]!.worker.exit(1);
    const [, , reason] = await exit;
    t.equal(reason, 'retired', 'an exit after close() is no failure');
    t.equal(spawned.length, 1, 'no replacement');
    t.equal(pool.backingOff, false, 'none scheduled');
    t.equal(pool.restarts, 0);
    t.equal(pool.grow(), undefined, 'grow() starts nothing');
    pool.replenish();
    pool.growForWaiting();
    t.equal(spawned.length, 1);
  });
  t.test('scheduled by a backoff', async (t) => {
    const { pool, spawned } = harness(t, { minWorkers: 1, maxWorkers: 2 });
    pool.start();
    const exit = exitOf(pool, spawned[0]!);
    void spawned[0]!.worker.exit(1);
    await exit;
    t.equal(pool.backingOff, true, 'a restart is scheduled');
    pool.close();
    t.equal(pool.backingOff, false, 'close() cancelled it');
    t.equal(spawned.length, 1);
    pool.replenish();
    t.equal(pool.backingOff, false, 'and replenish does not schedule another');
    t.equal(spawned.length, 1);
  });
});
