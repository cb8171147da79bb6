// The reuseport transport: every worker accepts on the public port itself, and the guarantees of the
// other transports still hold: limits counted exactly across threads, the client's own address, the
// PROXY protocol, balancing by moving connections between workers, and reloads that lose nothing.
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import t, { type Test } from 'tap';
import { consoleHandler, createServiceProxy, Level, type ServiceProxy, type ServiceProxyOptions } from 'socketnaut';
import { fixture, observeFor, requestJSON, waitFor, withDeadline } from '../helpers.ts';
import { skipUnlessSupported } from '../transport-support.ts';

consoleHandler.setLevel(Level.ERROR);
const skip = skipUnlessSupported('reuseport');

interface Info {
  threadId: number;
  sync?: { remote: { address: string; port: number }; local: { address: string; port: number } };
}

/** A proxy whose public server listens with reusePort, as the reuseport transport needs. */
async function startReuseport(
  t: Test,
  options: Omit<ServiceProxyOptions, 'server' | 'transport' | 'workerURL'> & { workerURL?: URL },
): Promise<{ proxy: ServiceProxy; port: number }> {
  const server = net.createServer();
  server.listen({ port: 0, host: '127.0.0.1', reusePort: true });
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const proxy = createServiceProxy({
    workerURL: fixture('http-server.js'),
    ...options,
    server,
    transport: 'reuseport',
  });
  t.teardown(() => proxy.shutdown({ timeout: 2000 }));
  const failed = once(proxy, 'error').then(([err]) => Promise.reject(err as Error));
  await Promise.race([once(proxy, 'ready'), failed]);
  t.equal(proxy.transport, 'reuseport');
  await waitFor(() => proxy.agents.every((agent) => agent.state === 'ready'), { what: 'every worker serving' });
  t.same(
    proxy.server.address(),
    { address: '127.0.0.1', family: 'IPv4', port },
    'the server still tells its address, its socket lent to a worker',
  );
  t.equal(proxy.server.listening, true);
  return { proxy, port };
}

/** Idle connections from `localAddress`; resolves once the proxy has decided each: open, or closed at once. */
async function idle(
  t: Test,
  port: number,
  count: number,
  localAddress: string,
): Promise<{ open: () => number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const closed = new Set<net.Socket>();
  t.teardown(() => sockets.forEach((socket) => socket.destroy()));
  for (let i = 0; i < count; i++) {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    socket.on('error', () => {});
    socket.resume();
    socket.on('close', () => closed.add(socket));
    sockets.push(socket);
    await once(socket, 'connect');
  }
  return { open: () => sockets.length - closed.size, sockets };
}

t.test(
  'each worker accepts on the public port; the socket names the client; stats() counts it all',
  { skip },
  async (t) => {
    const { proxy, port } = await startReuseport(t, { workerCount: 2, balance: 'round-robin' });
    const threads = new Set<number>();
    for (let i = 0; i < 40; i++) {
      const localAddress = `127.0.0.${10 + (i % 20)}`;
      const info = await requestJSON<Info>(port, { localAddress, agent: false });
      t.equal(info.sync?.remote.address, localAddress, `request ${i}: the worker saw the client's address`);
      threads.add(info.threadId);
    }
    t.equal(threads.size, 2, 'both workers accepted connections');
    const stats = await proxy.stats();
    t.equal(stats.accepted, 40);
    t.equal(stats.refused, 0);
    t.same(
      stats.workers.map((w) => w.totalConnections).reduce((a, b) => a + b),
      40,
      "the workers' totals add up to every connection",
    );
    t.ok(proxy.health().ready && proxy.health().live, 'the probes see the port open in the workers');
  },
);

t.test('maxConnections and maxConnectionsPerIp hold exactly across the workers', { skip }, async (t) => {
  const { proxy, port } = await startReuseport(t, { workerCount: 2, maxConnections: 12, maxConnectionsPerIp: 5 });
  const first = await idle(t, port, 20, '127.0.0.2');
  await waitFor(() => first.open() === 5, { what: () => `5 of 20 from one address admitted; ${first.open()} open` });
  const second = await idle(t, port, 20, '127.0.0.3');
  await waitFor(() => second.open() === 5, { what: () => `5 from a second address; ${second.open()} open` });
  const third = await idle(t, port, 20, '127.0.0.4');
  await waitFor(() => third.open() === 2, { what: () => `then only 2 more in all; ${third.open()} open` });
  t.equal((await proxy.stats()).refused, 48);
  t.equal((await proxy.stats()).connections, 12);

  for (const socket of [...first.sockets, ...second.sockets, ...third.sockets]) socket.destroy();
  await waitFor(async () => (await proxy.stats()).connections === 0, { what: 'every connection counted out' });
  const again = await idle(t, port, 8, '127.0.0.2');
  await waitFor(() => again.open() === 5, { what: () => `again exactly 5 from that address; ${again.open()} open` });
});

t.test(
  'connections the main thread accepted before any worker served count against the same limits',
  { skip },
  async (t) => {
    const server = net.createServer();
    server.listen({ port: 0, host: '127.0.0.1', reusePort: true });
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const proxy = createServiceProxy({
      server,
      workerURL: fixture('http-server.js'),
      workerCount: 2,
      transport: 'reuseport',
      maxConnectionsPerIp: 5,
    });
    t.teardown(() => proxy.shutdown({ timeout: 2000 }));
    // Accepted on the main thread and queued while the workers start.
    const early = await idle(t, port, 3, '127.0.0.9');
    await once(proxy, 'ready');
    await waitFor(() => proxy.agents.every((agent) => agent.state === 'ready'), { what: 'every worker serving' });
    const late = await idle(t, port, 5, '127.0.0.9');
    await waitFor(() => early.open() + late.open() === 5, {
      what: () => `5 in all from that address; ${early.open()} + ${late.open()} open`,
    });
    t.equal(early.open(), 3, 'the early ones are held');
    t.equal(late.open(), 2, 'the workers admitted only what the limit left');
  },
);

t.test(
  'a worker killed holding connections: its share is counted out, and the limit admits exactly as many again',
  { skip },
  async (t) => {
    const { proxy, port } = await startReuseport(t, { workerCount: 2, maxConnectionsPerIp: 30 });
    for (let round = 0; round < 3; round++) {
      const held = await idle(t, port, 30, '127.0.0.5');
      await waitFor(async () => (await proxy.stats()).connections === 30, { what: `round ${round}: 30 held` });
      const victim = proxy.agents.find((agent) => agent.connections > 0)!;
      const replaced = once(proxy, 'worker-online');
      await victim.worker.terminate();
      await withDeadline(replaced, 10_000, 'a replacement served');
      for (const socket of held.sockets) socket.destroy();
      await waitFor(async () => (await proxy.stats()).connections === 0, {
        what: `round ${round}: every connection counted out`,
      });
    }
    const last = await idle(t, port, 31, '127.0.0.5');
    await waitFor(() => last.open() === 30, { what: () => `exactly 30 admitted after the kills; ${last.open()} open` });
  },
);

t.test('ip-hash: each client is served by its own worker, whichever accepted it', { skip }, async (t) => {
  const { proxy, port } = await startReuseport(t, { workerCount: 2, balance: 'ip-hash' });
  const servedBy = new Map<string, Set<number>>();
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 10; i++) {
      const localAddress = `127.0.1.${10 + i}`;
      const { threadId } = await requestJSON<Info>(port, { localAddress, agent: false });
      servedBy.set(localAddress, (servedBy.get(localAddress) ?? new Set()).add(threadId));
    }
  }
  t.same(
    [...servedBy].filter(([, threads]) => threads.size > 1),
    [],
    'every client always reached the same worker',
  );
  t.equal(
    new Set([...servedBy.values()].map((threads) => [...threads][0])).size,
    2,
    'the clients are spread over both',
  );
  t.ok((await proxy.stats()).forwarded > 0, 'connections accepted by the other worker were moved');
});

t.test(
  'least-connections: a worker whose loop is saturated ends up with no more than 2 above a less busy one',
  { skip },
  async (t) => {
    const { proxy, port } = await startReuseport(t, { workerCount: 2, workerURL: fixture('obs-busy.js') });
    // One keep-alive connection keeps its worker's event loop busy, 50 ms at a time.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    let busy = true;
    const loop = (async () => {
      while (busy) await requestJSON(port, { path: '/block?ms=50', agent }).catch(() => undefined);
    })();
    t.teardown(() => {
      busy = false;
      return loop;
    });
    const saturated = await waitFor(() => proxy.agents.find((a) => a.connections === 1), {
      what: 'the saturated worker',
    });
    // Long enough for the worker to see its own loop saturated.
    await observeFor(300);
    const before = (await proxy.stats()).forwarded;
    const held = await idle(t, port, 30, '127.0.0.6');
    await waitFor(async () => (await proxy.stats()).connections === 31, { what: '30 idle connections held' });
    const stats = await proxy.stats();
    const mine = stats.workers.find((w) => w.threadId === saturated.threadId)!.connections;
    const other = stats.connections - mine;
    // The kernel spreads connections by a hash of their addresses: when it happens to give the
    // saturated worker no more than the other, nothing needs moving.
    t.comment(`the saturated worker moved ${stats.forwarded - before} connections it accepted`);
    t.ok(mine <= other + 2, `it holds no more than 2 above the other: ${mine} and ${other}`);
    for (const socket of held.sockets) socket.destroy();
  },
);

t.test('the PROXY protocol is read in the worker that serves; a sender not trusted is refused', { skip }, async (t) => {
  const { proxy, port } = await startReuseport(t, {
    workerCount: 2,
    proxyProtocol: true,
    proxyProtocolFrom: ['127.0.0.7'],
  });
  const send = (localAddress: string): Promise<string> =>
    new Promise((resolve) => {
      const socket = net.connect({ port, host: '127.0.0.1', localAddress });
      let reply = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => (reply += chunk));
      socket.on('error', () => {});
      socket.on('close', () => resolve(reply));
      socket.write('PROXY TCP4 203.0.113.9 10.0.0.1 4000 80\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
  for (let i = 0; i < 6; i++) {
    const reply = await send('127.0.0.7');
    const info = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as Info;
    t.equal(info.sync?.remote.address, '203.0.113.9', `request ${i}: the app saw the client the header named`);
  }
  t.equal(await send('127.0.0.8'), '', 'a header from an untrusted address gets nothing');
  t.equal((await proxy.stats()).proxyHeaderRejected, 1);
});

for (const workerCount of [1, 2]) {
  t.test(
    `${workerCount} worker(s): a rolling reload under load fails no request, and the listeners follow the workers`,
    { skip },
    async (t) => {
      const { proxy, port } = await startReuseport(t, { workerCount });
      let running = true;
      let ok = 0;
      const failures: string[] = [];
      const loop = async (): Promise<void> => {
        while (running) {
          await requestJSON<Info>(port, { agent: false }).then(
            () => ok++,
            (err: Error) => failures.push(err.message),
          );
        }
      };
      const loops = [loop(), loop()];
      const before = new Set(proxy.agents.map((agent) => agent.threadId));
      for (let i = 0; i < 3; i++) await proxy.reload();
      running = false;
      await Promise.all(loops);
      t.same(failures, [], `${ok} requests during 3 reloads, none failed`);
      t.ok(
        proxy.agents.every((agent) => !before.has(agent.threadId)),
        'every worker is new',
      );
      const threads = new Set<number>();
      for (let i = 0; i < 20; i++)
        threads.add((await requestJSON<Info>(port, { agent: false, localAddress: `127.0.2.${i + 1}` })).threadId);
      t.equal(threads.size, workerCount, 'the new workers accept');
    },
  );
}

t.test('shutdown finishes the requests in flight, then the port is closed', { skip }, async (t) => {
  const server = net.createServer();
  server.listen({ port: 0, host: '127.0.0.1', reusePort: true });
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const proxy = createServiceProxy({
    server,
    workerURL: fixture('http-server.js'),
    workerCount: 2,
    transport: 'reuseport',
  });
  await once(proxy, 'ready');
  const slow = requestJSON<Info>(port, { path: '/slow?ms=300', agent: false });
  await waitFor(async () => (await proxy.stats()).connections === 1, { what: 'the slow request in a worker' });
  await proxy.shutdown({ timeout: 5000 });
  t.ok((await slow).threadId > 0, 'the request in flight was answered');
  const refused = net.connect({ port, host: '127.0.0.1' });
  const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
  t.equal(err.code, 'ECONNREFUSED', 'nothing listens on the port any more');
  t.equal(server.listening, false);
  t.equal(server.address(), null);
});

t.test('bad settings are refused with the option named', async (t) => {
  const server = net.createServer();
  t.throws(
    () =>
      createServiceProxy({
        server,
        workerURL: fixture('http-server.js'),
        minWorkers: 1,
        maxWorkers: 2,
        transport: 'reuseport',
      }),
    {
      code: 'SOCKETNAUT_ERR_INVALID_OPTION',
      message: /transport/,
    },
  );
  const plain = net.createServer();
  plain.listen(0, '127.0.0.1');
  await once(plain, 'listening');
  const proxy = createServiceProxy({
    server: plain,
    workerURL: fixture('http-server.js'),
    workerCount: 1,
    transport: 'reuseport',
  });
  t.teardown(() => proxy.shutdown({ timeout: 0 }));
  const [err] = (await once(proxy, 'error')) as [NodeJS.ErrnoException];
  t.equal(err.code, 'SOCKETNAUT_ERR_REUSEPORT_UNSUPPORTED', 'a server without reusePort cannot share its port');
  // Where reuseport cannot run at all, that is the reason given, before the server is looked at.
  t.match(err.message, skip ? /is not available/ : /reusePort: true/);
});
