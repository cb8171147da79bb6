// Socket.IO's own flow (long-polling, then the upgrade to WebSocket) under the launcher, with an app
// that imports nothing of socketnaut: each request of a session reaches the worker that owns it,
// whichever worker its connection reached, and broadcasts reach every worker's clients.
import http from 'node:http';
import t from 'tap';
import { fixture, waitFor, withDeadline } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';
import { agentFrom, type Chat, chat, everyoneHears, spread, upgraded } from '../socketio.ts';

const APP = fixture('socketio/app.js').pathname;

for (const transport of ['handoff', 'pipe', 'reuseport'] as const) {
  t.test(`${transport}: 40 clients from 40 addresses, default transports`, async (t) => {
    const { port } = await startLauncher(t, [APP, '--workers', '2', '--transport', transport]);
    const chats = await Promise.all(
      Array.from({ length: 40 }, (_, i) => chat(t, port, { agent: agentFrom(t, `127.0.0.${10 + i}`) })),
    );
    await upgraded(chats);
    const counts = spread(chats);
    t.equal(counts.size, 2, 'both workers hold sessions');
    // The kernel spreads reuseport's connections by a hash of their addresses, not evenly.
    const least = transport === 'reuseport' ? 5 : 10;
    for (const [thread, count] of counts) t.ok(count >= least, `worker ${thread} holds ${count} of 40`);
    await everyoneHears(t, chats, chats[0]!);
  });
}

t.test('30 clients from one address all connect, on both workers', async (t) => {
  const { port } = await startLauncher(t, [APP, '--workers', '2']);
  const agent = agentFrom(t, '127.0.0.7');
  const chats = await Promise.all(Array.from({ length: 30 }, () => chat(t, port, { agent })));
  await upgraded(chats);
  const counts = spread(chats);
  t.equal(counts.size, 2, 'both workers hold sessions');
  for (const [thread, count] of counts) t.ok(count >= 7, `worker ${thread} holds ${count} of 30`);
  await everyoneHears(t, chats, chats.at(-1)!);
});

t.test('long-polling only: 10 clients, 20 acknowledged round trips each', async (t) => {
  const { port } = await startLauncher(t, [APP, '--workers', '2']);
  const chats = await Promise.all(Array.from({ length: 10 }, () => chat(t, port, { transports: ['polling'] })));
  t.equal(spread(chats).size, 2, 'sessions on both workers');
  let errors = 0;
  await Promise.all(
    chats.map(async (c) => {
      for (let i = 0; i < 20; i++) {
        const thread = await c.socket
          .timeout(5000)
          .emitWithAck('whoami')
          .catch(() => undefined);
        if (thread !== c.threadId) errors++;
      }
    }),
  );
  t.equal(errors, 0, '200 round trips, each answered by its session’s worker');
});

t.test('4 polling clients on one keep-alive agent: requests of both workers’ sessions share connections', async (t) => {
  const { port } = await startLauncher(t, [APP, '--workers', '2']);
  // As a browser: 6 connections to a host, kept alive. 4 long-polls hold 4 of them; the clients' other
  // requests share the rest, whichever session they are of.
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 6 });
  t.teardown(() => keepAlive.destroy());
  const agent = keepAlive as unknown as string;
  // Handshakes at once open connections at once, which the balancer spreads over the workers.
  const chats = await Promise.all(Array.from({ length: 4 }, () => chat(t, port, { transports: ['polling'], agent })));
  t.equal(spread(chats).size, 2, 'sessions on both workers');
  let ok = 0;
  await Promise.all(
    chats.map(async (c) => {
      for (let i = 0; i < 10; i++) if ((await c.socket.timeout(5000).emitWithAck('whoami')) === c.threadId) ok++;
    }),
  );
  t.equal(ok, chats.length * 10, 'every round trip succeeded');
});

t.test('rooms and fetchSockets() span the workers', async (t) => {
  const { port } = await startLauncher(t, [APP, '--workers', '2']);
  const chats = await Promise.all(
    Array.from({ length: 8 }, (_, i) => chat(t, port, { agent: agentFrom(t, `127.0.1.${i + 1}`) })),
  );
  await upgraded(chats);
  t.equal(spread(chats).size, 2, 'sessions on both workers');
  // Two members on each worker.
  const members = [...spread(chats).keys()].flatMap((thread) => chats.filter((c) => c.threadId === thread).slice(0, 2));
  for (const m of members) await m.socket.timeout(5000).emitWithAck('join', 'blue');
  const heard = new Set<Chat>();
  for (const c of chats)
    c.socket.on('news', (value: unknown) => {
      if (value === 'to blue') heard.add(c);
    });
  const others = chats.filter((c) => !members.includes(c));
  await others[0]!.socket.timeout(5000).emitWithAck('room-emit', 'blue', 'to blue');
  await waitFor(() => heard.size === members.length, { timeout: 5000, what: 'every member heard' });
  t.ok(
    others.every((c) => !heard.has(c)),
    'no one outside the room heard',
  );
  const fetched = (await chats[1]!.socket.timeout(5000).emitWithAck('fetch', null)) as { value: string[] };
  t.equal(fetched.value.length, 8, "fetchSockets() counts every worker's sockets");
});

t.test('a worker killed: its clients reconnect, and a broadcast reaches everyone again', async (t) => {
  const { port } = await startLauncher(t, [APP, '--workers', '2']);
  const chats = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      chat(t, port, { agent: agentFrom(t, `127.0.2.${i + 1}`), reconnection: true, reconnectionDelay: 100 }),
    ),
  );
  await upgraded(chats);
  const victim = chats[0]!;
  const onVictim = chats.filter((c) => c.threadId === victim.threadId);
  const reconnected = onVictim.map(
    (c) => new Promise<void>((resolve) => c.socket.io.once('reconnect', () => resolve())),
  );
  victim.socket.emit('crash');
  await withDeadline(
    Promise.all(reconnected),
    15_000,
    `the ${onVictim.length} clients of the crashed worker reconnecting`,
  );
  for (const c of chats)
    if (!c.socket.connected)
      await withDeadline(
        new Promise<void>((resolve) => c.socket.once('connect', () => resolve())),
        10_000,
        'connected',
      );
  await everyoneHears(t, chats, chats.at(-1)!);
});
