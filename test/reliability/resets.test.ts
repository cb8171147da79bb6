import net from 'node:net';
import t from 'tap';
import { atDeadline, fdsOf, now, startChildProxy, transports, waitFor } from './helpers.ts';

const CONNECTIONS = 10_000;
const CONCURRENCY = 100;
const FD_TOLERANCE = 10;

// Where each connection is broken off. The last kind completes normally, as a control.
const kinds = [
  'client resets before sending',
  'client resets mid-request',
  'client resets mid-response',
  'server destroys',
  'server resets',
  'server resets mid-response',
  'completes',
] as const;
type Kind = (typeof kinds)[number] | 'server resets unguarded';

// A small seeded generator, so that a failing run can be repeated with the seed it prints.
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const request = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;

/** One connection, broken off as `kind` says; resolves with whether it completed normally. */
function run(port: number, kind: Kind, rand: () => number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = 0;
    let completed = false;
    socket.on('error', () => {});
    socket.on('close', () => resolve(completed));
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on('connect', () => {
      switch (kind) {
        case 'client resets before sending':
          if (rand() < 0.5) socket.resetAndDestroy();
          else setImmediate(() => socket.resetAndDestroy());
          break;
        case 'client resets mid-request': {
          const whole = request('/upload').replace('\r\n\r\n', '\r\nContent-Length: 100000\r\n\r\n') + 'x'.repeat(1000);
          socket.write(whole.slice(0, Math.floor(rand() * whole.length)));
          setTimeout(() => socket.resetAndDestroy(), rand() * 5);
          break;
        }
        case 'client resets mid-response': {
          const after = Math.floor(rand() * 256 * 1024);
          socket.write(request('/big?bytes=1048576'));
          socket.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received > after && !socket.destroyed) socket.resetAndDestroy();
          });
          break;
        }
        case 'server destroys':
          socket.end(request('/destroy'));
          socket.resume();
          break;
        case 'server resets':
          socket.end(request('/reset'));
          socket.resume();
          break;
        case 'server resets unguarded':
          socket.end(request('/reset-unguarded'));
          socket.resume();
          break;
        case 'server resets mid-response':
          socket.end(request('/reset-mid'));
          socket.resume();
          break;
        case 'completes':
          socket.write(request('/').replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'));
          socket.on('data', (chunk: Buffer) => {
            if (chunk.includes('"threadId"')) completed = true;
          });
          break;
      }
    });
  });
}

for (const transport of transports) {
  t.test(
    `${transport}: ${CONNECTIONS} connections reset at random points leave no error and no descriptor behind`,
    async (t) => {
      const proxy = await startChildProxy(t, { transport, workerCount: 2 });
      const seed = Number(process.env.RESETS_SEED ?? Math.floor(Math.random() * 2 ** 31));
      const rand = random(seed);
      t.comment(`${transport}: seed ${seed} (RESETS_SEED=${seed} repeats this run)`);
      for (let i = 0; i < 10; i++) await run(proxy.port, 'completes', rand);
      const baseline = fdsOf(proxy.pid);

      const counts = new Map<Kind, number>();
      let completed = 0;
      let next = 0;
      const started = now();
      const lane = async (): Promise<void> => {
        while (next < CONNECTIONS) {
          next++;
          const kind = kinds[Math.floor(rand() * kinds.length)]!;
          counts.set(kind, (counts.get(kind) ?? 0) + 1);
          if ((await run(proxy.port, kind, rand)) && kind === 'completes') completed++;
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, lane));
      const elapsed = now() - started;

      // The proxy and its workers may take a moment to see the last closes.
      let fds = fdsOf(proxy.pid);
      let snapshot = await proxy.snapshot();
      const openIn = (s: typeof snapshot): number =>
        s.stats.workers.reduce((sum, worker) => sum + worker.connections, 0);
      let first = true;
      await waitFor(
        async () => {
          if (!first) snapshot = await proxy.snapshot();
          first = false;
          fds = fdsOf(proxy.pid);
          return fds <= baseline + FD_TOLERANCE && openIn(snapshot) === 0;
        },
        { timeout: 10_000, interval: 200, what: 'the last closes seen' },
      ).catch(atDeadline(undefined));
      const open = openIn(snapshot);
      t.comment(
        `${transport}: ${CONNECTIONS} connections in ${(elapsed / 1000).toFixed(1)} s: ` +
          [...counts].map(([kind, count]) => `${count} ${kind}`).join(', '),
      );
      t.comment(
        `${transport}: proxy fds ${baseline} before, ${fds} after; worker connections after: ${open}; accepted ${snapshot.stats.accepted}`,
      );

      t.equal(completed, counts.get('completes'), 'every connection left alone completed');
      t.ok(
        fds <= baseline + FD_TOLERANCE,
        `the proxy's fds came back to within ${FD_TOLERANCE} of the baseline (${baseline} → ${fds})`,
      );
      t.equal(open, 0, 'the workers count no open connection');
      t.same(
        proxy.events.filter((event) => event.event === 'worker-exit' || event.event === 'error'),
        [],
        'no worker died and no error was reported',
      );
      const { code, signal } = await proxy.shutdown();
      t.equal(code, 0, `the proxy process exits 0 (${signal ?? 'no signal'})`);
      t.notMatch(proxy.stderr(), /Uncaught|Error/, 'nothing on stderr');
    },
  );
}

for (const transport of transports) {
  t.test(
    `${transport}: an app that resets its own connection with socket.resetAndDestroy() keeps its worker`,
    async (t) => {
      const proxy = await startChildProxy(t, { transport, workerCount: 1 });
      for (let i = 0; i < 3; i++) await run(proxy.port, 'server resets unguarded', () => 0);
      const reply = await run(proxy.port, 'completes', () => 0);
      const exits = proxy.events.filter((event) => event.event === 'worker-exit');
      t.same(
        exits.map((exit) => exit.reason),
        [],
        'no worker died (under the pipe transport the app holds a Unix socket, on which resetAndDestroy() throws)',
      );
      t.ok(reply, 'a normal request then succeeds');
    },
  );
}
