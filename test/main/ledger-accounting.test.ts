import { once } from 'node:events';
import net from 'node:net';
import t, { type Test } from 'tap';
import { consoleHandler, Level, type ServiceProxy, type ServiceProxyAgent } from 'socketnaut';
import { fixture, requestJSON, startProxy, transports, waitFor, withDeadline } from '../helpers.ts';

// Workers are terminated on purpose and connections are turned away: keep those warnings off the output.
consoleHandler.setLevel(Level.ERROR);

// Every path that ends a connection must count it out exactly once, or the limits drift: up, and
// clients are refused for connections long gone; down, and a limit lets more in than it allows.
// Each test ends with the same proof: exactly N connections from an address limited to N are let
// in, and the next one is refused.

const N = 12;
/** The address the connections under test come from; others, for a second count. */
const CLIENT = '127.0.0.2';
const OTHER = '127.0.0.3';
const THIRD = '127.0.0.4';

interface Client {
  socket: net.Socket;
  connected: boolean;
  isClosed: boolean;
  closed: Promise<void>;
  received: string;
  /** Sends a keep-alive request and resolves with the status of its response; the connection stays open. */
  request(path?: string): Promise<number>;
}

/** Loopback clients bound to a chosen source address, all destroyed when the test ends. */
function clients(
  t: Test,
  port: number,
): { open(address: string, firstRequest?: string): Client; all: Set<Client>; closeAll(): Promise<void> } {
  const all = new Set<Client>();
  const closeAll = async (): Promise<void> => {
    for (const client of all) client.socket.destroy();
    await withDeadline(Promise.all([...all].map((c) => c.closed)), 5000, 'clients closed');
    all.clear();
  };
  t.teardown(() => {
    for (const client of all) client.socket.destroy();
  });
  const open = (address: string, firstRequest?: string): Client => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: address });
    socket.on('error', () => {});
    const client: Client = {
      socket,
      connected: false,
      isClosed: false,
      received: '',
      // Not events.once(): that rejects on the 'error' a reset brings before 'close'.
      closed: new Promise<void>((resolve) =>
        socket.once('close', () => {
          client.isClosed = true;
          resolve();
        }),
      ),
      request(path = '/') {
        const start = client.received.length;
        socket.write(`GET ${path} HTTP/1.1\r\nHost: test\r\n\r\n`);
        return withDeadline(
          new Promise<number>((resolve, reject) => {
            const check = (): void => {
              const reply = client.received.slice(start);
              const end = reply.indexOf('\r\n\r\n');
              if (end === -1) return;
              const length = Number(/content-length: *(\d+)/i.exec(reply.slice(0, end))?.[1] ?? 0);
              if (reply.length < end + 4 + length) return;
              socket.off('data', onData);
              socket.off('close', onClose);
              resolve(Number(reply.slice(9, 12)));
            };
            const onData = (): void => check();
            const onClose = (): void => reject(new Error(`closed before a reply to ${path}`));
            socket.on('data', onData);
            socket.once('close', onClose);
            check();
          }),
          8000,
          `a reply to ${path}`,
        );
      },
    };
    socket.on('data', (chunk: Buffer) => {
      client.received += chunk.toString('latin1');
    });
    socket.once('connect', () => {
      client.connected = true;
    });
    if (firstRequest) socket.write(`GET ${firstRequest} HTTP/1.1\r\nHost: test\r\n\r\n`);
    all.add(client);
    return client;
  };
  return { open, all, closeAll };
}

/** Opens one connection and waits until the proxy has accepted it: admitted or refused, it is decided then. */
async function openAndSettle(proxy: ServiceProxy, open: () => Client): Promise<{ client: Client; refused: boolean }> {
  const before = await proxy.stats();
  const client = open();
  let after = before;
  await waitFor(
    async () => {
      after = await proxy.stats();
      return after.accepted > before.accepted;
    },
    { timeout: 8000, what: 'the proxy accepted the connection' },
  );
  if (after.accepted !== before.accepted + 1)
    throw new Error(`expected one accept, saw ${after.accepted - before.accepted}`);
  return { client, refused: after.refused > before.refused };
}

/**
 * Shows that exactly `limit` connections from `address` are let in now and the next is refused,
 * with stats().refused growing by one: the count for `address` stood at exactly 0. With `serve`,
 * each admitted connection is also served a response. The admitted connections stay open.
 */
async function exactlyAdmitted(
  t: Test,
  proxy: ServiceProxy,
  open: (address: string) => Client,
  address: string,
  limit: number,
  serve: boolean,
): Promise<Client[]> {
  const admitted: Client[] = [];
  const refusals: number[] = [];
  const before = await proxy.stats();
  for (let i = 0; i < limit; i++) {
    const { client, refused } = await openAndSettle(proxy, () => open(address));
    if (refused) refusals.push(i + 1);
    else admitted.push(client);
  }
  t.same(refusals, [], `${limit} connections from ${address} admitted, none refused`);
  if (serve) {
    const statuses = await Promise.all(admitted.map((client) => client.request('/')));
    t.same(
      statuses,
      admitted.map(() => 200),
      'and each served',
    );
  }
  const extra = await openAndSettle(proxy, () => open(address));
  const after = await proxy.stats();
  t.equal(extra.refused, true, `connection ${limit + 1} from ${address} refused`);
  t.equal(after.refused - before.refused, 1, 'stats().refused grew by exactly one');
  await withDeadline(extra.client.closed, 5000, 'the refused connection closed');
  t.equal(extra.client.received, '', 'the refused connection got nothing');
  return admitted;
}

async function settledToZero(proxy: ServiceProxy, workers: number): Promise<void> {
  let last = '';
  await waitFor(
    async () => {
      const stats = await proxy.stats();
      last = JSON.stringify({
        connections: stats.connections,
        queuedNow: stats.queuedNow,
        agents: proxy.agents.map((a) => [a.state, a.connections]),
      });
      return (
        stats.connections === 0 &&
        stats.queuedNow === 0 &&
        proxy.agents.length === workers &&
        proxy.agents.every((agent) => agent.connections === 0 && agent.state === 'ready')
      );
    },
    { timeout: 8000, what: () => `counts back to 0 (last seen ${last})` },
  );
}

/**
 * Blocks this thread for `ms`, on purpose: the worker just told to terminate stops meanwhile, so the
 * main thread hears of its exit in the same turn as of the connections that broke with it, and
 * handles the exit before their closes, and before pipe connections to it finish connecting.
 */
function holdMainThread(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

type KillRound = { when: 'on-accept' | 'all-held'; hold: boolean };

// Each kind twice over: killed as it is given a connection (on its way: with the pipe transport,
// still connecting to the worker's Unix socket) or once all are held; the exit handled before the
// closes of its connections (hold) or in whatever order they come.
const KILL_ROUNDS: KillRound[] = [
  { when: 'on-accept', hold: true },
  { when: 'all-held', hold: true },
  { when: 'all-held', hold: false },
  { when: 'on-accept', hold: false },
  { when: 'on-accept', hold: true },
  { when: 'all-held', hold: true },
];

for (const transport of transports) {
  t.test(
    `${transport}: workers killed with connections on their way and held count them out exactly once`,
    async (t) => {
      const { proxy, server, port } = await startProxy(t, {
        workerURL: fixture('http-server.js'),
        workerCount: 2,
        transport,
        balance: 'round-robin',
        maxConnectionsPerIp: N,
        maxConnections: 2 * N,
        workerOptions: { execArgv: [] },
      });
      const { open, closeAll, all } = clients(t, port);
      const fates = { served: 0, cut: 0, refused: 0, onTheirWayAtExit: 0 };
      let victimAtExit: ServiceProxyAgent | undefined;
      const onExit = (agent: ServiceProxyAgent): void => {
        // The ledger has counted out what the worker held; what is left was on its way to it.
        if (agent === victimAtExit) fates.onTheirWayAtExit += agent.connections;
      };
      proxy.on('worker-exit', onExit);
      t.teardown(() => proxy.off('worker-exit', onExit));

      for (const [round, { when, hold }] of KILL_ROUNDS.entries()) {
        const before = await proxy.stats();
        const online = once(proxy, 'worker-online');
        let killed: Promise<ServiceProxyAgent>;
        if (when === 'on-accept') {
          // Runs after the proxy's own listener: the connection was just given to a worker.
          const killAt = 3 + round;
          killed = new Promise((resolve) => {
            let seen = 0;
            let counts = new Map(proxy.agents.map((agent) => [agent, agent.connections]));
            const onConnection = (): void => {
              seen++;
              const now = new Map(proxy.agents.map((agent) => [agent, agent.connections]));
              const given = [...now].find(([agent, count]) => count > (counts.get(agent) ?? 0))?.[0];
              counts = now;
              if (seen < killAt || !given) return;
              server.off('connection', onConnection);
              victimAtExit = given;
              void given.worker.terminate();
              if (hold) holdMainThread(200);
              resolve(given);
            };
            server.on('connection', onConnection);
            t.teardown(() => server.off('connection', onConnection));
          });
        }
        // All at once, each with a request that takes a while.
        const batch = Array.from({ length: N }, () => open(CLIENT, '/slow?ms=800'));
        if (when === 'all-held') {
          await waitFor(async () => (await proxy.stats()).connections === N, {
            timeout: 8000,
            what: 'all held by workers',
          });
          const victim = proxy.agents.find((agent) => agent.connections > 0)!;
          victimAtExit = victim;
          const dying = victim.worker.terminate();
          if (hold) holdMainThread(200);
          await dying;
          killed = Promise.resolve(victim);
        }
        await withDeadline(killed!, 10_000, 'a worker was killed');
        await withDeadline(online, 10_000, 'its replacement served');
        // What the dead worker had not taken is served by the others.
        await waitFor(() => batch.every((c) => c.isClosed || /HTTP\/1\.1 200/.test(c.received)), {
          timeout: 10_000,
          what: 'every client served or cut',
        });
        for (const client of batch) {
          if (/HTTP\/1\.1 200/.test(client.received)) fates.served++;
          else fates.cut++;
        }
        fates.refused += (await proxy.stats()).refused - before.refused;
        await closeAll();
        await settledToZero(proxy, 2);
      }
      t.comment(
        `over ${KILL_ROUNDS.length} kills: ${fates.served} served, ${fates.cut} cut with their worker, ` +
          `${fates.onTheirWayAtExit} still on their way at an exit, ${fates.refused} refused along the way`,
      );
      t.equal(all.size, 0);

      const fromClient = await exactlyAdmitted(t, proxy, open, CLIENT, N, true);
      // In all, exactly 2N: N more from another address, then any other address is refused.
      const fromOther = await exactlyAdmitted(t, proxy, open, OTHER, N, true);
      t.equal(fromClient.length + fromOther.length, 2 * N);
      const beyond = await openAndSettle(proxy, () => open(THIRD));
      t.equal(
        beyond.refused,
        true,
        `maxConnections (${2 * N}) holds exactly: a connection from a third address is refused`,
      );
      await closeAll();
      await settledToZero(proxy, 2);
    },
  );
}

t.test('pipe: connections refused by a worker and re-dispatched are counted once', async (t) => {
  const { proxy, port } = await startProxy(t, {
    workerURL: fixture('http-unlinks-pipe.js'),
    workerCount: 2,
    transport: 'pipe',
    balance: 'round-robin',
    maxConnectionsPerIp: N,
    maxConnections: 2 * N,
    workerOptions: { execArgv: [] },
  });
  const { open, closeAll } = clients(t, port);
  // Its Unix socket gone, one worker refuses every connection while it still counts as ready.
  const { threadId: broken } = await requestJSON<{ threadId: number }>(port, { path: '/unlink-pipe' });
  await settledToZero(proxy, 2);
  const before = await proxy.stats();
  for (let round = 0; round < 3; round++) {
    const batch = Array.from({ length: N }, () => open(CLIENT));
    const statuses = await Promise.all(batch.map((client) => client.request('/')));
    t.same(
      statuses,
      batch.map(() => 200),
      `round ${round + 1}: all ${N} served`,
    );
    t.ok(
      batch.every((client) => !client.received.includes(`"threadId":${broken}`)),
      'none by the broken worker',
    );
    await closeAll();
    await settledToZero(proxy, 2);
  }
  const after = await proxy.stats();
  t.ok(
    after.redispatched - before.redispatched >= N,
    `the broken worker refused connections (${after.redispatched - before.redispatched})`,
  );
  t.equal(after.refused, before.refused, 'no connection was refused for a limit');
  await exactlyAdmitted(t, proxy, open, CLIENT, N, true);
  await exactlyAdmitted(t, proxy, open, OTHER, N, true);
  t.equal((await openAndSettle(proxy, () => open(THIRD))).refused, true, `maxConnections (${2 * N}) holds exactly`);
  await closeAll();
  await settledToZero(proxy, 2);
  // The proof itself went through refusals: the counts are still exact after it.
  await exactlyAdmitted(t, proxy, open, CLIENT, N, true);
  await closeAll();
});

t.test('pipe: connections every worker refuses wait in the queue, expire, and are counted out once', async (t) => {
  const QUEUE_TIMEOUT = 300;
  const { proxy, port } = await startProxy(t, {
    workerURL: fixture('http-unlinks-pipe.js'),
    workerCount: 1,
    transport: 'pipe',
    maxConnectionsPerIp: N,
    queueTimeout: QUEUE_TIMEOUT,
    workerOptions: { execArgv: [] },
  });
  const { open, closeAll } = clients(t, port);
  await requestJSON(port, { path: '/unlink-pipe' });
  await settledToZero(proxy, 1);
  for (let round = 0; round < 2; round++) {
    const before = await proxy.stats();
    // Each is refused by the only worker, then waits for another that cannot start (maxWorkers 1).
    const admitted = await exactlyAdmitted(t, proxy, open, CLIENT, N, false);
    await withDeadline(
      Promise.all(admitted.map((c) => c.closed)),
      QUEUE_TIMEOUT + 5000,
      'the queued connections closed',
    );
    const after = await proxy.stats();
    t.equal(after.expired - before.expired, N, `round ${round + 1}: all ${N} expired`);
    t.ok(after.redispatched - before.redispatched >= N, 'after the worker refused them');
    t.equal(after.queuedNow, 0);
    await closeAll();
  }
});

for (const transport of transports) {
  t.test(
    `${transport}: connections that expire, overflow or are abandoned in the queue are counted out once`,
    async (t) => {
      // Long enough for the steps below that must finish while the first connections still wait.
      const QUEUE_TIMEOUT = 1000;
      const channelName = `socketnaut-ledger-${transport}-${process.pid}`;
      const channel = new BroadcastChannel(channelName);
      t.teardown(() => channel.close());
      let workerWaiting = false;
      channel.onmessage = (event: MessageEvent) => {
        if (event.data === 'waiting') workerWaiting = true;
      };
      const { proxy, port } = await startProxy(t, {
        workerURL: fixture('ledger-listens-on-signal.js'),
        // No worker runs until a connection waits; the one that starts then does not serve until told.
        minWorkers: 0,
        maxWorkers: 1,
        transport,
        maxConnectionsPerIp: N,
        queueLimit: N,
        queueTimeout: QUEUE_TIMEOUT,
        workerStartTimeout: 60_000,
        workerOptions: { execArgv: [], workerData: { channel: channelName } },
      });
      const { open, closeAll } = clients(t, port);

      // 1. Expired: N wait and are let in, the next is refused; all N expire.
      let before = await proxy.stats();
      let admitted = await exactlyAdmitted(t, proxy, open, CLIENT, N, false);
      await withDeadline(
        Promise.all(admitted.map((c) => c.closed)),
        QUEUE_TIMEOUT + 5000,
        'the queued connections expired',
      );
      let after = await proxy.stats();
      t.equal(after.expired - before.expired, N, `all ${N} expired`);
      t.equal(after.queued - before.queued, N, 'after waiting in the queue');
      t.equal(after.queuedNow, 0);
      await closeAll();
      await waitFor(() => workerWaiting, { timeout: 10_000, what: 'a worker started and waits to be told to listen' });
      t.equal(proxy.agents.length, 1);
      t.equal(proxy.agents[0]!.state, 'starting', 'it does not serve');

      // 2. Overflow: with the queue full (N from CLIENT), every connection from OTHER is let in and
      // turned away at once. Were those not counted out, the (N+1)th from OTHER would be refused.
      before = await proxy.stats();
      admitted = [];
      for (let i = 0; i < N; i++) admitted.push((await openAndSettle(proxy, () => open(CLIENT))).client);
      const overflowRefusals: number[] = [];
      const OVERFLOW = N + 2;
      for (let i = 0; i < OVERFLOW; i++) {
        const { client, refused } = await openAndSettle(proxy, () => open(OTHER));
        if (refused) overflowRefusals.push(i + 1);
        await withDeadline(client.closed, 5000, 'an overflowing connection closed');
      }
      after = await proxy.stats();
      t.same(
        overflowRefusals,
        [],
        `${OVERFLOW} connections from ${OTHER} over a full queue: none refused for the limit of ${N}`,
      );
      t.equal(after.expired - before.expired, OVERFLOW, 'each turned away as the queue was full');
      t.equal(after.refused, before.refused);
      t.equal(after.queuedNow, N, 'the queue still holds the first N');
      await withDeadline(
        Promise.all(admitted.map((c) => c.closed)),
        QUEUE_TIMEOUT + 5000,
        'the queued connections expired',
      );
      await closeAll();

      // 3. Abandoned: the clients go away while they wait.
      before = await proxy.stats();
      admitted = await exactlyAdmitted(t, proxy, open, CLIENT, N, false);
      for (const client of admitted) client.socket.destroy();
      await closeAll();
      await waitFor(async () => (await proxy.stats()).queuedNow === 0, {
        timeout: QUEUE_TIMEOUT + 5000,
        what: 'the queue emptied',
      });
      after = await proxy.stats();
      t.comment(`abandoned: ${N - (after.expired - before.expired)} of ${N} noticed before they expired`);

      // Every one of those is counted out: the worker now serves, and exactly N are let in again.
      const online = once(proxy, 'worker-online');
      channel.postMessage('listen');
      await withDeadline(online, 10_000, 'the worker served');
      await exactlyAdmitted(t, proxy, open, CLIENT, N, true);
      await exactlyAdmitted(t, proxy, open, OTHER, N, true);
      await closeAll();
      await settledToZero(proxy, 1);
    },
  );
}

t.test('pipe: a worker killed while 200 connections from one address are mid-connect, 20 times over', async (t) => {
  const BURST = 200;
  const ROUNDS = 20;
  const { proxy, server, port } = await startProxy(t, {
    workerURL: fixture('http-server.js'),
    workerCount: 2,
    transport: 'pipe',
    maxConnectionsPerIp: BURST,
    workerOptions: { execArgv: [] },
  });
  const { open, closeAll } = clients(t, port);
  let cut = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const online = once(proxy, 'worker-online');
    // Half-way through the burst, the worker given the latest connection dies: the pipes to it that
    // are still connecting, and those it holds, break with it.
    const killed = new Promise<void>((resolve) => {
      let seen = 0;
      const onConnection = (): void => {
        if (++seen < BURST / 2) return;
        server.off('connection', onConnection);
        const victim = [...proxy.agents].sort((a, b) => b.totalConnections - a.totalConnections)[0]!;
        void victim.worker.terminate();
        if (round % 2 === 0) holdMainThread(50);
        resolve();
      };
      server.on('connection', onConnection);
      t.teardown(() => server.off('connection', onConnection));
    });
    const burst = Array.from({ length: BURST }, () => open(CLIENT, '/slow?ms=100'));
    await withDeadline(killed, 10_000, `round ${round}: a worker was killed`);
    await withDeadline(online, 10_000, `round ${round}: its replacement served`);
    await waitFor(() => burst.every((c) => c.isClosed || /HTTP\/1\.1 200/.test(c.received)), {
      timeout: 10_000,
      what: `round ${round}: every client served or cut`,
    });
    cut += burst.filter((c) => !/HTTP\/1\.1 200/.test(c.received)).length;
    await closeAll();
    await settledToZero(proxy, 2);
  }
  t.comment(`${cut} of ${BURST * ROUNDS} connections cut with their worker over ${ROUNDS} kills`);
  t.ok(cut > 0, 'the kills did cut connections');
  await exactlyAdmitted(t, proxy, open, CLIENT, BURST, false);
  await closeAll();
});
