import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import t, { type Test } from 'tap';
import type { Logger } from 'streams-logger';
import type { PoolSettings, WorkerPool as Pool, WorkerReports } from '../../lib/main/pool.ts';
import type { WorkerRecord as Record } from '../../lib/main/worker-record.ts';
import type { WorkerBootData } from '../../lib/protocol/messages.ts';
import type { ReuseportIntake as Intake } from '../../lib/transports/reuseport/main.ts';
import { createServiceProxy } from 'socketnaut';
import { fixture, withDeadline } from '../helpers.ts';

// A worker that cannot be started (its boot data cannot be made, or the runtime refuses the thread)
// is a coded 'start-failed' of the pool, never a throw, even from a restart's backoff timer.
const { WorkerPool } = (await import(new URL('../../dist/lib/main/pool.js', import.meta.url).href)) as {
  WorkerPool: typeof Pool;
};
const { WorkerRecord } = (await import(new URL('../../dist/lib/main/worker-record.js', import.meta.url).href)) as {
  WorkerRecord: typeof Record;
};
const { ReuseportIntake } = (await import(
  new URL('../../dist/lib/transports/reuseport/main.js', import.meta.url).href
)) as { ReuseportIntake: typeof Intake };

const CODE = 'SOCKETNAUT_ERR_WORKER_START';

const quietLog = { level: 0, debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;

const reports: WorkerReports = {
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
};

/** Stands in for a worker thread; `exit()` ends it on a later turn of the loop, as a thread ends. */
class FakeWorker extends EventEmitter {
  static #nextThreadId = 7000;
  readonly threadId = FakeWorker.#nextThreadId++;
  readonly performance = { eventLoopUtilization: () => ({ idle: 0, active: 0, utilization: 0 }) };

  exit(code: number): void {
    setImmediate(() => this.emit('exit', code));
  }

  terminate(): Promise<number> {
    this.exit(1);
    return Promise.resolve(1);
  }
}

interface Harness {
  pool: Pool;
  workers: FakeWorker[];
  /** While set, making a worker's boot data throws it. */
  bootFailure: Error | undefined;
  /** While set, starting the thread throws it. */
  spawnFailure: Error | undefined;
}

function harness(t: Test): Harness {
  const ports: MessagePort[] = [];
  const h: Harness = {
    pool: undefined as unknown as Pool,
    workers: [],
    bootFailure: undefined,
    spawnFailure: undefined,
  };
  const spawn: PoolSettings['spawn'] = (origin) => {
    if (h.spawnFailure) throw h.spawnFailure;
    const { port1, port2 } = new MessageChannel();
    ports.push(port1, port2);
    const worker = new FakeWorker();
    h.workers.push(worker);
    return new WorkerRecord(origin, worker as unknown as Worker, port1);
  };
  h.pool = new WorkerPool({
    minWorkers: 2,
    maxWorkers: 4,
    workerOptions: {},
    workerStartTimeout: 60_000,
    idleTimeout: 60_000,
    shutdownTimeout: 60_000,
    boot: (id) => {
      if (h.bootFailure) throw h.bootFailure;
      return { pipePath: `/nonexistent/fake-${id}.sock` } as Omit<WorkerBootData, 'port'>;
    },
    log: quietLog,
    reports,
    spawn,
  });
  t.teardown(() => {
    h.pool.close();
    for (const port of ports) port.close();
  });
  return h;
}

function nextStartFailure(pool: Pool): Promise<NodeJS.ErrnoException> {
  return withDeadline(
    once(pool, 'start-failed').then(([err]) => err as NodeJS.ErrnoException),
    5000,
    "'start-failed'",
  );
}

t.test('grow() with boot data that cannot be made: undefined, a coded start-failed, the others kept', async (t) => {
  const h = harness(t);
  h.pool.start();
  t.equal(h.pool.size, 2, 'two workers started');
  const before = [...h.pool.records];
  h.bootFailure = new Error('no place is left');
  const failed = nextStartFailure(h.pool);
  let grown: Record | undefined;
  t.doesNotThrow(() => {
    grown = h.pool.grow();
  }, 'grow() does not throw');
  t.equal(grown, undefined, 'grow() started none');
  const err = await failed;
  t.equal(err.code, CODE);
  t.match(err.message, /no place is left/);
  t.same([...h.pool.records], before, 'the pool keeps the workers it had');
});

t.test('a thread the runtime refuses is a coded start-failed, with the refusal as its cause', async (t) => {
  const h = harness(t);
  h.pool.start();
  const refusal = Object.assign(new Error('Initiated Worker with invalid execArgv flags'), {
    code: 'ERR_WORKER_INVALID_EXEC_ARGV',
  });
  h.spawnFailure = refusal;
  const failed = nextStartFailure(h.pool);
  t.equal(h.pool.grow(), undefined);
  const err = await failed;
  t.equal(err.code, CODE);
  t.equal(err.cause, refusal, 'the refusal is the cause');
  t.equal(h.pool.size, 2);
});

t.test('a restart after the backoff that cannot start is reported, not thrown from the timer', async (t) => {
  const h = harness(t);
  h.pool.start();
  // A worker dies before serving: its restart waits for the backoff, on a timer.
  h.bootFailure = new Error('cannot boot');
  const failed = nextStartFailure(h.pool);
  const exited = once(h.pool, 'worker-exit');
  h.workers[0]!.exit(1);
  await exited;
  t.equal(h.pool.size, 1, 'one worker left');
  t.ok(h.pool.backingOff, 'the restart waits for the backoff');
  const err = await failed;
  t.equal(err.code, CODE, 'the timer reported a coded error');
  t.equal(h.pool.size, 1, 'the other worker is kept');
});

t.test('the reuseport intake, with no place left in its shared counts, throws the coded error', async (t) => {
  const server = net.createServer();
  t.teardown(() => server.close());
  server.listen({ port: 0, host: '127.0.0.1', reusePort: true });
  await once(server, 'listening');
  const intake = await ReuseportIntake.open({
    server,
    ipv6Only: () => false,
    accept: (socket) => socket.destroy(),
    acceptFailed() {},
    limits: () => ({ maxConnections: 0, maxConnectionsPerIp: 0, perIpPrefix: 64 }),
    balance: 'least-connections',
    trusted: undefined,
    maxWorkers: 1,
    log: quietLog,
  });
  t.teardown(() => intake.stopAccepting());
  const places = intake.sharedCounts.layout.workers;
  for (let id = 1; id <= places; id++) intake.workerBoot(id, 0);
  t.throws(() => intake.workerBoot(places + 1, 0), { code: CODE }, `the place after the ${places} is refused, coded`);
});

t.test("a proxy reports a thread the runtime refuses as a coded 'error'", async (t) => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const proxy = createServiceProxy({
    server,
    workerURL: fixture('http-server.js'),
    workerCount: 1,
    transport: 'pipe',
    workerOptions: { execArgv: ['--no-such-flag-for-socketnaut'] },
  });
  t.teardown(() => proxy.shutdown({ timeout: 1000 }));
  const [err] = (await withDeadline(once(proxy, 'error'), 5000, "the proxy's 'error'")) as [NodeJS.ErrnoException];
  t.equal(err.code, CODE);
  t.equal(
    (err.cause as NodeJS.ErrnoException | undefined)?.code,
    'ERR_WORKER_INVALID_EXEC_ARGV',
    'caused by the refusal',
  );
});
