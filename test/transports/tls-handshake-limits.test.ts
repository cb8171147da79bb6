import { once } from 'node:events';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { fixture, observeFor, startProxy, tlsFiles, waitFor } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';

const keyPath = new URL('../fixtures/tls/key.pem', import.meta.url).pathname;
const certPath = new URL('../fixtures/tls/cert.pem', import.meta.url).pathname;

interface IdleConnection {
  socket: net.Socket;
  closed: boolean;
  closedAt: number;
}

/** TCP connections that never send a ClientHello, opened one after another from `localAddress`. */
async function idleConnections(t: Test, port: number, count: number, localAddress: string): Promise<IdleConnection[]> {
  const opened: IdleConnection[] = [];
  t.teardown(() => opened.forEach(({ socket }) => socket.destroy()));
  const connectOne = async (): Promise<void> => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    const entry: IdleConnection = { socket, closed: false, closedAt: 0 };
    opened.push(entry);
    socket.on('error', () => {});
    // Read, so that the proxy's FIN is seen.
    socket.resume();
    socket.on('close', () => {
      entry.closed = true;
      entry.closedAt = performance.now();
    });
    await Promise.race([once(socket, 'connect'), once(socket, 'close')]);
  };
  // A hundred at a time, so that the client's own accept of them stays well inside the backlog.
  for (let i = 0; i < count; i += 100) await Promise.all(Array.from({ length: Math.min(100, count - i) }, connectOne));
  return opened;
}

function httpsGet(port: number, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, localAddress, agent: false, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

const openCount = (connections: IdleConnection[]): number => connections.filter((c) => !c.closed).length;

t.test('a tls.Server: the limits count connections from their TCP accept, before any handshake', async (t) => {
  const { proxy, port } = await startProxy(t, {
    server: tls.createServer({ key: tlsFiles.key, cert: tlsFiles.cert }),
    workerURL: fixture('http-server.js'),
    workerCount: 1,
    maxConnectionsPerIp: 1,
    maxConnections: 2,
    handshakeTimeout: 1000,
  });
  const started = performance.now();
  const idle = await idleConnections(t, port, 20, '127.0.0.40');
  await waitFor(() => openCount(idle) === 1, { what: () => `19 of 20 refused; ${openCount(idle)} open` });
  t.equal((await proxy.stats()).refused, 19, 'refused at once, though no handshake began');

  const other = await idleConnections(t, port, 1, '127.0.0.41');
  await waitFor(() => openCount(other) === 1, { what: 'a second address admitted' });
  const third = await idleConnections(t, port, 1, '127.0.0.42');
  await waitFor(() => openCount(third) === 0, { what: 'maxConnections refuses a third address' });
  t.equal((await proxy.stats()).refused, 20);

  const holder = idle.find((c) => !c.closed)!;
  await waitFor(() => holder.closed && other[0]!.closed, {
    timeout: 10_000,
    what: 'the idle connections closed at the handshake deadline',
  });
  t.ok(holder.closedAt - started >= 900, 'not before the handshake deadline');
  t.equal(
    await httpsGet(port, '127.0.0.40'),
    200,
    'the address that flooded is served once its idle connections are gone',
  );
  t.equal(await httpsGet(port, '127.0.0.42'), 200);
});

t.test('a handshake that fails or is abandoned gives its place back', async (t) => {
  const { proxy, port } = await startProxy(t, {
    server: tls.createServer({ key: tlsFiles.key, cert: tlsFiles.cert }),
    workerURL: fixture('http-server.js'),
    workerCount: 1,
    maxConnectionsPerIp: 1,
  });
  const served = (): Promise<boolean> =>
    httpsGet(port, '127.0.0.43').then(
      (status) => status === 200,
      () => false,
    );
  for (let i = 0; i < 5; i++) {
    const garbage = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.43' });
    garbage.on('error', () => {});
    garbage.end('GET / HTTP/1.1\r\n\r\n');
    await once(garbage, 'close');
    const abandoned = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.43' });
    await once(abandoned, 'connect');
    abandoned.destroy();
    // The proxy hears of the close a moment after the client made it.
    await waitFor(served, { what: `round ${i}: the one place free again` });
  }
  // The last request's connection may still be closing: the place is taken once an idle one holds it.
  const holder = await waitFor(
    async () => {
      const one = await idleConnections(t, port, 1, '127.0.0.43');
      await observeFor(200);
      return openCount(one) === 1 && one;
    },
    { timeout: 8000, interval: 0, what: 'an idle connection holding the one place' },
  );
  const second = await idleConnections(t, port, 1, '127.0.0.43');
  await waitFor(() => openCount(second) === 0, { what: 'a second one refused while the first holds the place' });
  t.equal(openCount(holder), 1, 'exactly one admitted');
  t.ok((await proxy.stats()).refused >= 1);
});

t.test('the launcher: an idle flood of 2,000 TCP connections against --max-connections-per-ip 10', async (t) => {
  const deadline = 3000;
  const launcher = await startLauncher(t, [
    fixture('plain-app.js').pathname,
    '--workers',
    '1',
    '--tls-key',
    keyPath,
    '--tls-cert',
    certPath,
    '--max-connections-per-ip',
    '10',
    '--handshake-timeout',
    String(deadline),
  ]);
  const pid = launcher.child.pid!;
  const descriptors = (): number => fs.readdirSync(`/proc/${pid}/fd`).length;
  const rssMb = (): number => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  for (let i = 0; i < 20; i++) t.equal(await httpsGet(launcher.port, '127.0.0.2'), 200);
  const baseline = { fds: descriptors(), rss: rssMb() };

  const floodStarted = performance.now();
  const flood = idleConnections(t, launcher.port, 2000, '127.0.0.1');
  let answered = 0;
  for (let i = 0; i < 100; i++) if ((await httpsGet(launcher.port, '127.0.0.2')) === 200) answered++;
  const idle = await flood;
  t.equal(answered, 100, 'another address is served throughout');

  await waitFor(() => openCount(idle) === 10, {
    timeout: deadline,
    what: () => `1,990 refused at once; ${openCount(idle)} open`,
  });
  t.ok(performance.now() - floodStarted < deadline, 'the refusals came before the handshake deadline');
  await waitFor(() => openCount(idle) === 0, {
    timeout: 2 * deadline,
    what: () => `the last 10 closed at the deadline; ${openCount(idle)} open`,
  });

  const fds = await waitFor(() => descriptors() <= baseline.fds && descriptors(), {
    what: () => `descriptors back to ${baseline.fds}: ${descriptors()}`,
  });
  t.ok(fds <= baseline.fds, `descriptors back to baseline (${baseline.fds} → ${fds})`);
  const rss = rssMb();
  t.ok(rss < baseline.rss + 40, `RSS near its baseline (${baseline.rss.toFixed(1)} → ${rss.toFixed(1)} MB)`);
});
