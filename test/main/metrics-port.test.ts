// The metrics port runs on the main thread beside the proxy: it says where it is bound, and no
// scraper, slow or eager, can hold it or skew what it reports.
import { once } from 'node:events';
import net from 'node:net';
import t from 'tap';
import { fixture, observeFor, request, waitFor } from '../helpers.ts';
import { startLauncher, type RunningLauncher } from '../launcher.ts';

function printed(launcher: RunningLauncher, what: 'metrics' | 'health'): Promise<URL> {
  const pattern = new RegExp(`· ${what} (http://\\S+)`);
  return waitFor(() => pattern.exec(launcher.stdout())?.[1], { what: `the ${what} URL on stdout` }).then(
    (url) => new URL(url),
  );
}

t.test('given a port only, the start-up line shows that every interface is bound', async (t) => {
  const launcher = await startLauncher(t, [
    fixture('plain-app.js').pathname,
    '--workers',
    '1',
    '--metrics',
    '0',
    '--health',
    '0',
  ]);
  for (const what of ['metrics', 'health'] as const) {
    const url = await printed(launcher, what);
    t.ok(['[::]', '0.0.0.0'].includes(url.hostname), `${what}: ${url.hostname}, the wildcard address it is bound to`);
    const reply = await request(Number(url.port), {
      host: '127.0.0.1',
      path: what === 'metrics' ? '/metrics' : '/ready',
    });
    t.equal(reply.status, 200, `${what}: reachable on loopback through the wildcard`);
  }
});

t.test('given a host, only that address is bound and shown', async (t) => {
  const launcher = await startLauncher(t, [
    fixture('plain-app.js').pathname,
    '--workers',
    '1',
    '--metrics',
    '127.0.0.1:0',
  ]);
  const url = await printed(launcher, 'metrics');
  t.equal(url.hostname, '127.0.0.1');
  t.equal(url.pathname, '/metrics');
  const elsewhere = net.connect({ port: Number(url.port), host: '127.0.0.2' });
  const [err] = (await once(elsewhere, 'error')) as [NodeJS.ErrnoException];
  t.equal(err.code, 'ECONNREFUSED', 'another loopback address is not bound');
});

t.test('idle connections to the metrics port are capped and cut; scraping works again after', async (t) => {
  const launcher = await startLauncher(t, [
    fixture('plain-app.js').pathname,
    '--workers',
    '1',
    '--metrics',
    '127.0.0.1:0',
  ]);
  const url = await printed(launcher, 'metrics');
  const port = Number(url.port);
  const idle: { closed: boolean }[] = [];
  const sockets: net.Socket[] = [];
  t.teardown(() => sockets.forEach((socket) => socket.destroy()));
  for (let i = 0; i < 40; i++) {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const entry = { closed: false };
    socket.on('error', () => {});
    // Read, so that the server's FIN is seen.
    socket.resume();
    socket.on('close', () => (entry.closed = true));
    sockets.push(socket);
    idle.push(entry);
    await once(socket, 'connect');
  }
  const open = (): number => idle.filter((entry) => !entry.closed).length;
  await waitFor(() => open() === 32, { what: () => `32 connections held, the rest closed at once; ${open()} open` });
  // A slow scraper that sends half its headers and stops.
  const slow = net.connect({ port, host: '127.0.0.1' });
  slow.on('error', () => {});
  await waitFor(() => open() === 0, { timeout: 8000, what: () => `idle connections cut; ${open()} open` });
  slow.destroy();
  const reply = await request(port, { host: '127.0.0.1', path: '/metrics' });
  t.equal(reply.status, 200, 'a scrape is answered once the idle ones are gone');
});

t.test(
  'scrapes close together, concurrent or not, report the event-loop use of one interval of at least 1 s',
  async (t) => {
    const launcher = await startLauncher(t, [
      fixture('obs-busy.js').pathname,
      '--workers',
      '1',
      '--metrics',
      '127.0.0.1:0',
    ]);
    const url = await printed(launcher, 'metrics');
    const port = Number(url.port);
    const elu = async (): Promise<string> => {
      const reply = await request(port, { host: '127.0.0.1', path: '/metrics' });
      return /^socketnaut_worker_event_loop_utilization_ratio\{slot="0"\} (\S+)$/m.exec(reply.text)?.[1] ?? 'missing';
    };
    let busy = true;
    const load = (async () => {
      // The worker alternates 30 ms busy and idle, so that a short interval would read far from the long one.
      while (busy)
        await request(launcher.port, { host: '127.0.0.1', path: '/block?ms=30' }).then(
          () => new Promise((resolve) => setTimeout(resolve, 30)),
        );
    })();
    t.teardown(() => {
      busy = false;
      return load;
    });
    await elu();
    // Long enough for the next scrape to measure a new interval.
    await observeFor(1100);
    const first = await elu();
    const concurrent = await Promise.all(Array.from({ length: 10 }, elu));
    const after: string[] = [];
    for (let i = 0; i < 5; i++) after.push(await elu());
    t.not(first, 'missing');
    t.same(concurrent, Array<string>(10).fill(first), 'concurrent scrapes repeat the interval just measured');
    t.same(after, Array<string>(5).fill(first), 'and so do scrapes right after it');
    t.ok(Number(first) > 0.1 && Number(first) < 0.9, `the measured interval saw the alternation (${first})`);
  },
);
