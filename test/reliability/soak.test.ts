import crypto from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import t from 'tap';
import WebSocket from 'ws';
import {
  atDeadline,
  fdsOf,
  FIXED_YOUNG_GENERATION,
  httpRequest,
  mb,
  now,
  pace,
  startChildProxy,
  transports,
  waitFor,
  type ChildProxy,
} from './helpers.ts';

// Long enough for the process's memory to reach its working size (allocator arenas, V8 heap
// reservations), with crashes and reloads in it, so that the end is compared with a warm process.
const WARM_UP_MS = 25_000;
const WARM_UP_EVENTS = [
  { at: 5000, what: 'crash' as const },
  { at: 10_000, what: 'reload' as const },
  { at: 15_000, what: 'crash' as const },
  { at: 20_000, what: 'reload' as const },
];
const SOAK_MS = 60_000;
// The transports soak side by side, each about 90 s, sharing two cores: more than tap's default 120 s for a file.
t.setTimeout(300_000);
// Crashes at 5, 15, ... 55 s; reloads at 7.5, 22.5, 37.5, 52.5 s: every 10 s and every 15 s, never together.
const CRASHES = [5, 15, 25, 35, 45, 55].map((s) => s * 1000);
const RELOADS = [7.5, 22.5, 37.5, 52.5].map((s) => s * 1000);
const PAUSE_MS = 10;
const UPLOAD_BYTES = 64 * 1024;
const RSS_TOLERANCE = 0.1;
const FD_TOLERANCE = 10;
// A failure on a connection that had not yet been answered may have been given to the dying worker.
const CRASH_WINDOW_MS = 1000;

// Both transports soak at once, each in a proxy process of its own, to keep the file's run time down.
t.jobs = 2;

interface Failure {
  kind: string;
  at: number;
  threadId: number | undefined;
  message: string;
}

class Ledger {
  readonly ok = new Map<string, number>();
  readonly failures: Failure[] = [];
  readonly crashes: { threadId: number; at: number }[] = [];
  readonly killed = new Set<number>();

  success(kind: string): void {
    this.ok.set(kind, (this.ok.get(kind) ?? 0) + 1);
  }

  fail(kind: string, threadId: number | undefined, err: unknown): void {
    this.failures.push({ kind, at: now(), threadId, message: (err as Error).message ?? String(err) });
  }

  /** Failures not explained by a crash: on a surviving worker, or on no worker near a crash. */
  unexplained(): Failure[] {
    return this.failures.filter((failure) => {
      if (failure.threadId !== undefined) return !this.killed.has(failure.threadId);
      return !this.crashes.some((crash) => failure.at >= crash.at && failure.at - crash.at <= CRASH_WINDOW_MS);
    });
  }
}

async function httpClient(port: number, ledger: Ledger, running: () => boolean, keepAlive: boolean): Promise<void> {
  const kind = keepAlive ? 'keep-alive' : 'connection: close';
  const agent = new http.Agent({ keepAlive, maxSockets: 1 });
  const known = new WeakMap<net.Socket, number>();
  let count = 0;
  try {
    while (running()) {
      let socket: net.Socket | undefined;
      try {
        const reply = await httpRequest(port, {
          agent,
          headers: keepAlive && ++count % 20 !== 0 ? {} : { connection: 'close' },
          onSocket: (s) => (socket = s),
        });
        if (reply.status !== 200) throw new Error(`HTTP ${reply.status}`);
        known.set(socket!, reply.threadId);
        ledger.success(kind);
      } catch (err) {
        ledger.fail(kind, socket && known.get(socket), err);
      }
      await pace(PAUSE_MS);
    }
  } finally {
    agent.destroy();
  }
}

async function uploadClient(port: number, ledger: Ledger, running: () => boolean): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const known = new WeakMap<net.Socket, number>();
  try {
    while (running()) {
      const body = crypto.randomBytes(UPLOAD_BYTES);
      let socket: net.Socket | undefined;
      try {
        const reply = await httpRequest(port, {
          agent,
          method: 'POST',
          path: '/upload',
          body,
          onSocket: (s) => (socket = s),
        });
        if (reply.status !== 200) throw new Error(`HTTP ${reply.status}`);
        known.set(socket!, reply.threadId);
        const { bytes, sha256 } = JSON.parse(reply.body.toString()) as { bytes: number; sha256: string };
        if (bytes !== UPLOAD_BYTES || sha256 !== crypto.createHash('sha256').update(body).digest('hex')) {
          throw new Error(`upload arrived as ${bytes} bytes with another digest`);
        }
        ledger.success('upload');
      } catch (err) {
        ledger.fail('upload', socket && known.get(socket), err);
      }
      await pace(PAUSE_MS);
    }
  } finally {
    agent.destroy();
  }
}

/** One WebSocket session: the server's hello, then 20 messages echoed back byte for byte. */
function webSocketSession(port: number): { threadId: () => number | undefined; done: Promise<void> } {
  let threadId: number | undefined;
  const done = new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const timer = setTimeout(() => ws.terminate(), 10_000);
    let expected: Buffer | undefined;
    let left = 20;
    const sendNext = (): void => {
      expected = crypto.randomBytes(1024 + Math.floor(Math.random() * 3072));
      ws.send(expected);
    };
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        threadId = (JSON.parse(data.toString()) as { threadId: number }).threadId;
        sendNext();
        return;
      }
      if (!expected || !data.equals(expected)) {
        ws.terminate();
        reject(new Error('an echo differed from what was sent'));
        return;
      }
      if (--left > 0) sendNext();
      else ws.close(1000);
    });
    ws.on('error', (err) => reject(err));
    ws.on('close', (code) => {
      clearTimeout(timer);
      if (code === 1000 && left === 0) resolve();
      else reject(new Error(`closed with ${code} after ${20 - left} echoes`));
    });
  });
  return { threadId: () => threadId, done };
}

async function webSocketClient(port: number, ledger: Ledger, running: () => boolean): Promise<void> {
  while (running()) {
    const session = webSocketSession(port);
    try {
      await session.done;
      ledger.success('websocket');
    } catch (err) {
      ledger.fail('websocket', session.threadId(), err);
    }
    await pace(PAUSE_MS);
  }
}

/** Waits until nothing is open and the pool is exactly its two workers, none still draining. */
function settled(proxy: ChildProxy): Promise<boolean> {
  return waitFor(
    async () => {
      const { stats } = await proxy.snapshot();
      return stats.workers.length === 2 && stats.workers.every((w) => w.state === 'ready' && w.connections === 0);
    },
    { timeout: 15_000, interval: 200, what: 'two ready workers and no open connection' },
  ).then(() => true, atDeadline(false));
}

/** Every kind of client, running until `stop` is called. */
function load(port: number, ledger: Ledger): { stop: () => Promise<void> } {
  let running = true;
  const isRunning = (): boolean => running;
  const clients = [
    httpClient(port, ledger, isRunning, true),
    httpClient(port, ledger, isRunning, true),
    httpClient(port, ledger, isRunning, false),
    httpClient(port, ledger, isRunning, false),
    uploadClient(port, ledger, isRunning),
    webSocketClient(port, ledger, isRunning),
    webSocketClient(port, ledger, isRunning),
  ];
  return {
    stop: async () => {
      running = false;
      await Promise.all(clients);
    },
  };
}

/** Crashes a worker or reloads the pool at each event's time (ms from now), until `duration` has passed. */
async function drive(
  proxy: ChildProxy,
  ledger: Ledger,
  events: { at: number; what: 'crash' | 'reload' }[],
  duration: number,
): Promise<Promise<unknown>[]> {
  const start = now();
  const reloads: Promise<unknown>[] = [];
  for (const event of [...events].sort((a, b) => a.at - b.at)) {
    await pace(start + event.at - now());
    if (event.what === 'reload') {
      reloads.push(proxy.command('reload'));
      continue;
    }
    const online = proxy.next('worker-online', undefined, 10_000);
    const crash = await proxy.command<{ threadId: number; at: number }>('kill', { which: 'oldest', how: 'exit' });
    ledger.killed.add(crash.threadId);
    ledger.crashes.push(crash);
    await online;
  }
  await pace(start + duration - now());
  return reloads;
}

for (const transport of transports) {
  t.test(
    `${transport}: a minute of mixed load, a crash every 10 s and a reload every 15 s`,
    { buffered: true },
    async (t) => {
      // glibc gives each thread an arena of its own and keeps what it freed there: with several worker
      // threads RSS then drifts by more than any leak would. Two arenas make RSS follow live memory.
      const proxy = await startChildProxy(t, {
        transport,
        workerCount: 2,
        appConfig: { websocket: true },
        exposeGc: true,
        prefix: ['env', 'MALLOC_ARENA_MAX=2'],
        nodeArgs: FIXED_YOUNG_GENERATION,
      });
      const ledger = new Ledger();
      // Warm-up, then a quiet moment to take the figures the end is compared with.
      const warmUp = load(proxy.port, ledger);
      const warmUpReloads = await drive(proxy, ledger, WARM_UP_EVENTS, WARM_UP_MS);
      await warmUp.stop();
      await Promise.allSettled(warmUpReloads);
      t.ok(await settled(proxy), 'the proxy is quiet after warm-up');
      const warm = await proxy.snapshot();
      const warmFds = fdsOf(proxy.pid);
      const okAtWarm = new Map(ledger.ok);

      const soak = load(proxy.port, ledger);
      const events = [
        ...CRASHES.map((at) => ({ at, what: 'crash' as const })),
        ...RELOADS.map((at) => ({ at, what: 'reload' as const })),
      ];
      const reloads = await drive(proxy, ledger, events, SOAK_MS);
      await soak.stop();
      const reloadOutcomes = await Promise.allSettled(reloads);
      t.ok(await settled(proxy), 'the proxy is quiet at the end');
      const end = await proxy.snapshot();
      const endFds = fdsOf(proxy.pid);

      const served = [...ledger.ok].map(([kind, count]) => `${count - (okAtWarm.get(kind) ?? 0)} ${kind}`).join(', ');
      const byKind = new Map<string, number>();
      for (const failure of ledger.failures) byKind.set(failure.kind, (byKind.get(failure.kind) ?? 0) + 1);
      const exits = proxy.events.filter((event) => event.event === 'worker-exit');
      t.comment(`${transport}: served after warm-up: ${served}`);
      t.comment(
        `${transport}: ${ledger.crashes.length} crashes, ${reloadOutcomes.length} reloads, ${exits.length} workers exited; ` +
          `failures: ${ledger.failures.length} (${[...byKind].map(([kind, count]) => `${count} ${kind}`).join(', ') || 'none'})`,
      );
      t.comment(
        `${transport}: RSS ${mb(warm.rss)} after warm-up, ${mb(end.rss)} at the end (${(((end.rss - warm.rss) / warm.rss) * 100).toFixed(1)}%); ` +
          `fds ${warmFds} → ${endFds}; main thread V8 heap ${mb(warm.memory.heapUsed)} → ${mb(end.memory.heapUsed)}, ` +
          `Buffers ${mb(warm.memory.arrayBuffers)} → ${mb(end.memory.arrayBuffers)}; ` +
          `workers' heaps ${warm.stats.workers.map((w) => mb(w.heapUsed ?? 0)).join(' + ')} → ${end.stats.workers.map((w) => mb(w.heapUsed ?? 0)).join(' + ')}`,
      );

      t.same(ledger.unexplained(), [], 'every request not on a crashed worker succeeded');
      t.equal(
        ledger.crashes.length,
        WARM_UP_EVENTS.filter((event) => event.what === 'crash').length + CRASHES.length,
        'every crash happened',
      );
      t.equal(
        reloadOutcomes.filter((outcome) => outcome.status === 'fulfilled').length,
        RELOADS.length,
        'every reload completed',
      );
      t.ok(
        exits.every((exit) => exit.reason === 'retired' || ledger.killed.has(exit.threadId!)),
        'no worker died but the crashed ones',
      );
      t.ok([...ledger.ok.keys()].length === 4, 'all four kinds of load ran');
      t.ok(Math.abs(end.rss - warm.rss) <= RSS_TOLERANCE * warm.rss, `RSS is within 10% of its value after warm-up`);
      t.ok(
        Math.abs(endFds - warmFds) <= FD_TOLERANCE,
        `open fds are within ${FD_TOLERANCE} of their count after warm-up`,
      );
      const { code } = await proxy.shutdown();
      t.equal(code, 0, 'the proxy process exits 0');
    },
  );
}
