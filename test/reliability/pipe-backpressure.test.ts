import http from 'node:http';
import t from 'tap';
import {
  FIXED_YOUNG_GENERATION,
  httpRequest,
  mb,
  MB,
  now,
  observeFor,
  rssOf,
  startChildProxy,
  summary,
} from './helpers.ts';

const CLIENTS = 100;
const READ_RATE = 64 * 1024; // bytes per second, per client
const DURATION_MS = 20_000;
// Far more than a client can read in the time: anything the main thread buffers instead of pausing
// the worker would show.
const BODY_BYTES = 256 * MB;
const RSS_GROWTH_LIMIT = 50 * MB;
// Once the connections' buffers have filled, reading slowly for longer must not cost more memory.
const STEADY_GROWTH_LIMIT = 10 * MB;

interface SlowReader {
  received: () => number;
  /** Seconds since its response began. */
  reading: () => number;
  firstByte: Promise<void>;
  stop: () => void;
  error: () => string | undefined;
}

/** Downloads a large body, reading no faster than READ_RATE by pausing the response. */
function slowReader(port: number): SlowReader {
  let received = 0;
  let error: string | undefined;
  let started = 0;
  let timer: NodeJS.Timeout | undefined;
  let onFirstByte!: () => void;
  const firstByte = new Promise<void>((resolve) => (onFirstByte = resolve));
  const req = http.get({ host: '127.0.0.1', port, path: `/big?bytes=${BODY_BYTES}`, agent: false }, (res) => {
    started = now();
    res.on('data', (chunk: Buffer) => {
      if (received === 0) onFirstByte();
      received += chunk.length;
      const ahead = received - (READ_RATE * (now() - started)) / 1000;
      if (ahead > 0 && !res.isPaused()) {
        res.pause();
        timer = setTimeout(() => res.resume(), (ahead / READ_RATE) * 1000);
      }
    });
    res.on('error', (err) => (error ??= err.message));
    res.on('end', () => (error ??= 'the body ended early'));
  });
  req.on('error', (err) => (error ??= err.message));
  return {
    received: () => received,
    reading: () => (now() - started) / 1000,
    firstByte,
    error: () => error,
    stop: () => {
      clearTimeout(timer);
      req.destroy();
    },
  };
}

t.test(`pipe: ${CLIENTS} clients reading at 64 KiB/s do not make the main thread buffer`, async (t) => {
  const proxy = await startChildProxy(t, {
    transport: 'pipe',
    workerCount: 2,
    exposeGc: true,
    nodeArgs: FIXED_YOUNG_GENERATION,
  });
  for (let i = 0; i < 20; i++) await httpRequest(proxy.port, { path: '/blob?bytes=65536' });
  const baseline = (await proxy.snapshot()).rss;

  const readers = Array.from({ length: CLIENTS }, () => slowReader(proxy.port));
  t.teardown(() => readers.forEach((reader) => reader.stop()));
  await Promise.all(readers.map((reader) => reader.firstByte));
  const started = now();
  const samples: number[] = [];
  // An observation window, not a sleep: what is under test is that RSS does not grow over a fixed
  // time while the clients read slowly; it is sampled once a second.
  while (now() - started < DURATION_MS) {
    await observeFor(1000);
    samples.push(rssOf(proxy.pid));
  }
  const elapsed = (now() - started) / 1000;
  // After a garbage collection: what the main thread itself still holds for the 100 connections.
  const held = (await proxy.snapshot()).memory;
  const peak = Math.max(...samples);
  const perClient = readers.map((reader) => reader.received());
  // One chunk may arrive just before the check; a resume timer may fire a little early, since it
  // counts from the event loop's cached time.
  const overLimit = readers.filter(
    (reader) => reader.received() > READ_RATE * (reader.reading() + 0.25) + 64 * 1024,
  ).length;
  const errors = readers.map((reader) => reader.error()).filter((error) => error !== undefined);
  readers.forEach((reader) => reader.stop());

  t.comment(
    `pipe: RSS before ${mb(baseline)}, peak ${mb(peak)} (+${mb(peak - baseline)}), last ${mb(samples.at(-1)!)}; ` +
      `samples: ${samples.map((rss) => (rss / MB).toFixed(0)).join(' ')} MB`,
  );
  t.comment(
    `pipe: main thread after GC: V8 heap ${mb(held.heapUsed)}, Buffers ${mb(held.arrayBuffers)}, external ${mb(held.external)}`,
  );
  t.comment(
    `pipe: per client over ${elapsed.toFixed(1)} s, KiB: ${summary(perClient.map((bytes) => bytes / 1024))}; ` +
      `${mb(perClient.reduce((a, b) => a + b, 0))} in all`,
  );
  t.same(errors, [], 'no download failed');
  t.equal(overLimit, 0, 'no client read faster than its limit (the reads were throttled)');
  t.ok(
    perClient.every((bytes) => bytes > READ_RATE),
    'every client kept receiving',
  );
  const half = Math.floor(samples.length / 2);
  const steadyGrowth = Math.max(...samples.slice(half)) - samples[half]!;
  t.ok(
    steadyGrowth < STEADY_GROWTH_LIMIT,
    `RSS grew by ${mb(steadyGrowth)} over the second half (limit ${mb(STEADY_GROWTH_LIMIT)})`,
  );
  t.ok(peak - baseline < RSS_GROWTH_LIMIT, `RSS grew by ${mb(peak - baseline)} in all (limit ${mb(RSS_GROWTH_LIMIT)})`);
});
