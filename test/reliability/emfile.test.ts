import net from 'node:net';
import t from 'tap';
import { cpuOf, fdsOf, httpRequest, now, observeFor, pace, startChildProxy, transports } from './helpers.ts';

const FD_LIMIT = 256;
const IDLE = 400;
const ROUNDS = 3;
const WINDOW_MS = 2000;
// A thread spinning on an accept that keeps failing takes a whole core (100%) by itself; shedding the
// flood took 30 to 52% of wall time on 2 cores.
const CPU_SHARE_LIMIT = 0.8;
const RECOVERY_MS = 1000;

/**
 * Keeps IDLE connections open that never send a byte. Those the server sheds come back at once, as
 * a pool of clients that retries would: the listener always has connections waiting.
 */
function idleFlood(port: number): {
  sockets: Set<net.Socket>;
  shed: () => number;
  stop: () => void;
  opened: Promise<void>;
} {
  const sockets = new Set<net.Socket>();
  const retries = new Set<NodeJS.Timeout>();
  let holding = true;
  let shed = 0;
  const open = (): Promise<void> =>
    new Promise((resolve) => {
      if (!holding) return resolve();
      const socket = net.connect(port, '127.0.0.1', () => resolve());
      socket.on('error', () => resolve());
      socket.on('close', () => {
        sockets.delete(socket);
        if (!holding) return;
        shed++;
        const retry = setTimeout(() => {
          retries.delete(retry);
          void open();
        }, 10);
        retries.add(retry);
      });
      sockets.add(socket);
    });
  const opened = Promise.all(Array.from({ length: IDLE }, open)).then(() => {});
  return {
    sockets,
    opened,
    shed: () => shed,
    stop: () => {
      holding = false;
      for (const retry of retries) clearTimeout(retry);
      retries.clear();
      for (const socket of sockets) socket.destroy();
    },
  };
}

for (const transport of transports) {
  t.test(`${transport}: out of file descriptors, the proxy neither crashes nor spins, and recovers`, async (t) => {
    const proxy = await startChildProxy(t, {
      transport,
      workerCount: 2,
      prefix: ['prlimit', `--nofile=${FD_LIMIT}:${FD_LIMIT}`],
    });
    t.equal((await httpRequest(proxy.port)).status, 200, 'serves before the flood');
    const before = fdsOf(proxy.pid);

    // Whether a thread spins depends on a race (see the report), so the flood comes more than once.
    for (let round = 1; round <= ROUNDS; round++) {
      const flood = idleFlood(proxy.port);
      t.teardown(() => flood.stop());
      await flood.opened;
      const cpu = cpuOf(proxy.pid);
      const start = now();
      // A measuring window, not a sleep: the CPU share over a fixed time is what is under test.
      await observeFor(WINDOW_MS);
      const share = (cpuOf(proxy.pid) - cpu) / (now() - start);
      const fdsDuring = fdsOf(proxy.pid);
      const shed = flood.shed();
      flood.stop();

      // A normal request every 100 ms for 2 s: those started a second or more after the close must all succeed.
      const closed = now();
      const attempts: Promise<{ startedAfter: number; answeredAfter?: number; error?: string }>[] = [];
      for (let i = 0; i < 20; i++) {
        await pace(closed + i * 100 - now());
        const startedAfter = now() - closed;
        attempts.push(
          httpRequest(proxy.port, { deadline: 3000 }).then(
            (reply) =>
              reply.status === 200
                ? { startedAfter, answeredAfter: now() - closed }
                : { startedAfter, error: `HTTP ${reply.status}` },
            (err: Error) => ({ startedAfter, error: err.message }),
          ),
        );
      }
      const outcomes = await Promise.all(attempts);
      const answered = outcomes.flatMap((outcome) =>
        outcome.answeredAfter === undefined ? [] : [outcome.answeredAfter],
      );
      const recovered = answered.length > 0 ? Math.min(...answered) : undefined;
      const failures = new Map<string, number>();
      for (const { error } of outcomes) if (error) failures.set(error, (failures.get(error) ?? 0) + 1);
      const lateFailures = outcomes.filter(
        (outcome) => outcome.startedAfter >= RECOVERY_MS && outcome.error !== undefined,
      );
      t.comment(
        `${transport}, round ${round}: fds ${before} before, ${fdsDuring} during (limit ${FD_LIMIT}); ` +
          `CPU ${(100 * share).toFixed(0)}% of wall time over ${WINDOW_MS / 1000} s; ${shed} connections shed by the server; ` +
          `recovered ${recovered === undefined ? 'never' : `after ${recovered.toFixed(0)} ms`}` +
          (failures.size > 0
            ? `; requests that failed meanwhile: ${[...failures].map(([message, count]) => `${count}× ${message}`).join(', ')}`
            : ''),
      );
      // Both transports keep below the limit on purpose and turn the flood away themselves (their
      // default maxConnections, from the open-file limit).
      t.ok(
        shed > 0 && fdsDuring < FD_LIMIT,
        `round ${round}: the flood was turned away below the limit (${fdsDuring} fds)`,
      );
      t.ok(
        share < CPU_SHARE_LIMIT,
        `round ${round}: CPU stayed under ${100 * CPU_SHARE_LIMIT}% of wall time (${(100 * share).toFixed(0)}%)`,
      );
      t.ok(
        recovered !== undefined && recovered <= RECOVERY_MS,
        `round ${round}: a normal request succeeded within ${RECOVERY_MS} ms of the idle ones closing`,
      );
      t.same(
        lateFailures,
        [],
        `round ${round}: every request started ${RECOVERY_MS} ms or more after the close succeeded`,
      );
    }
    t.same(
      proxy.events.filter((event) => event.event === 'worker-exit'),
      [],
      'no worker died',
    );
    const { code } = await proxy.shutdown();
    t.equal(code, 0, 'the proxy process was still running and exits 0');
  });
}
