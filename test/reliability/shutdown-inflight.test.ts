import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import type { Test } from 'tap';
import { startLauncher, type RunningLauncher } from '../launcher.ts';
import { appFixture, childEnv, now, pattern, summary, transports } from './helpers.ts';

const IN_FLIGHT = 200;
const BODY_BYTES = 16 * 1024;
const REFUSED_WITHIN_MS = 100;

interface InFlight {
  /** Resolves once the response's headers have arrived: the request is in the app. */
  headers: Promise<void>;
  /** Resolves with the body received and when the connection closed. */
  done: Promise<{ body: Buffer; complete: boolean; closedAt: number }>;
}

function inFlight(port: number, ms: number): InFlight {
  let onHeaders!: () => void;
  let onHeadersFailed!: (err: Error) => void;
  const headers = new Promise<void>((resolve, reject) => {
    onHeaders = resolve;
    onHeadersFailed = reject;
  });
  const done = new Promise<{ body: Buffer; complete: boolean; closedAt: number }>((resolve) => {
    const chunks: Buffer[] = [];
    let complete = false;
    const req = http.get(
      { host: '127.0.0.1', port, path: `/stream?ms=${ms}&bytes=${BODY_BYTES}`, agent: false },
      (res) => {
        onHeaders();
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => (complete = true));
        res.on('error', () => {});
      },
    );
    req.on('error', onHeadersFailed);
    req.on('close', () => resolve({ body: Buffer.concat(chunks), complete, closedAt: now() }));
  });
  return { headers, done };
}

/** Connects again and again until a connection is refused; resolves with when that happened. */
async function firstRefusal(port: number, deadline: number): Promise<{ at: number; connectedBefore: number }> {
  let connectedBefore = 0;
  while (now() < deadline) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
    });
    if (refused) return { at: now(), connectedBefore };
    connectedBefore++;
  }
  throw new Error('new connections were still accepted at the deadline');
}

async function start(t: Test, transport: string, extra: string[] = []): Promise<RunningLauncher> {
  return startLauncher(t, ['--workers', '2', '--transport', transport, ...extra, appFixture.pathname], childEnv());
}

for (const transport of transports) {
  t.test(
    `${transport}: SIGTERM refuses new connections at once and lets ${IN_FLIGHT} in-flight requests finish`,
    async (t) => {
      const launcher = await start(t, transport);
      const requests = Array.from({ length: IN_FLIGHT }, () => inFlight(launcher.port, 2000));
      await Promise.all(requests.map((request) => request.headers));

      const signalled = now();
      launcher.child.kill('SIGTERM');
      const refusal = await firstRefusal(launcher.port, signalled + 5000);
      const results = await Promise.all(requests.map((request) => request.done));
      const { code } = await launcher.exited;

      const expected = pattern(BODY_BYTES);
      const intact = results.filter((result) => result.complete && result.body.equals(expected)).length;
      t.comment(
        `${transport}: new connections refused ${(refusal.at - signalled).toFixed(1)} ms after SIGTERM ` +
          `(${refusal.connectedBefore} accepted before); ${intact}/${IN_FLIGHT} bodies intact; ` +
          `closed after the signal, ms: ${summary(results.map((result) => result.closedAt - signalled))}`,
      );
      t.ok(refusal.at - signalled < REFUSED_WITHIN_MS, `new connections refused within ${REFUSED_WITHIN_MS} ms`);
      t.equal(intact, IN_FLIGHT, 'every in-flight response arrived complete, byte for byte');
      t.equal(code, 0, 'the launcher exits 0');
    },
  );

  t.test(
    `${transport}: with --shutdown-timeout 1000, what is still open closes one second after SIGTERM`,
    async (t) => {
      const launcher = await start(t, transport, ['--shutdown-timeout', '1000']);
      const requests = Array.from({ length: IN_FLIGHT }, () => inFlight(launcher.port, 10_000));
      await Promise.all(requests.map((request) => request.headers));

      const signalled = now();
      launcher.child.kill('SIGTERM');
      const results = await Promise.all(requests.map((request) => request.done));
      const { code } = await launcher.exited;
      const exitedAt = now();

      const closedAfter = results.map((result) => result.closedAt - signalled);
      t.comment(
        `${transport}: connections closed after the signal, ms: ${summary(closedAfter)}; ` +
          `launcher exited after ${(exitedAt - signalled).toFixed(0)} ms`,
      );
      t.equal(
        results.filter((result) => result.complete).length,
        0,
        'no unfinished response was passed off as complete',
      );
      t.ok(
        closedAfter.every((ms) => ms >= 700 && ms <= 1300),
        `every connection closed 1 ± 0.3 s after the signal (${Math.min(...closedAfter).toFixed(0)} to ${Math.max(...closedAfter).toFixed(0)} ms)`,
      );
      t.equal(code, 0, 'the launcher exits 0');
    },
  );
}
