import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import t, { type Test } from 'tap';
import { consoleHandler, Level } from 'socketnaut';
import {
  atDeadline,
  fixture,
  request,
  requestJSON,
  startProxy,
  transports,
  waitFor,
  withDeadline,
} from '../helpers.ts';

// Workers dying here is on purpose; keep their warnings off the test output.
const previousLevel = consoleHandler.level;
consoleHandler.setLevel(process.env.SOCKETNAUT_TEST_LOG === 'debug' ? Level.DEBUG : Level.ERROR);
t.teardown(() => consoleHandler.setLevel(previousLevel));

const FD_SLACK = 4;

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

type Reset = 'on-connect' | 'half-headers' | 'half-body';

/** Connects, sends part of a request, then resets the connection; resolves once it is closed. */
async function resetClient(port: number, kind: Reset): Promise<void> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  const write = (data: string): Promise<void> => new Promise((resolve) => socket.write(data, () => resolve()));
  if (kind === 'half-headers') {
    await write('GET /slow?ms=50 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Par');
  } else if (kind === 'half-body') {
    await write('POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2000\r\n\r\n');
    await write('x'.repeat(1000));
  }
  const closed = once(socket, 'close');
  socket.resetAndDestroy();
  await closed;
}

interface Info {
  threadId: number;
}

async function setup(t: Test, transport: (typeof transports)[number]) {
  const { proxy, port } = await startProxy(t, { workerURL: fixture('http-exits.js'), workerCount: 2, transport });
  const errors: Error[] = [];
  const exits: string[] = [];
  const onError = (err: Error): void => {
    errors.push(err);
  };
  const onExit = (_handle: unknown, _code: number, reason: string): void => {
    exits.push(reason);
  };
  proxy.on('error', onError);
  proxy.on('worker-exit', onExit);
  t.teardown(() => {
    proxy.off('error', onError);
    proxy.off('worker-exit', onExit);
  });
  const idle = (): boolean =>
    proxy.agents.length === 2 && proxy.agents.every((a) => a.state === 'ready' && a.connections === 0);
  await Promise.all(Array.from({ length: 4 }, () => requestJSON<Info>(port)));
  await waitFor(idle, 5000);
  return { proxy, port, errors, exits, idle, baseline: openFds() };
}

async function checkFds(t: Test, baseline: number): Promise<void> {
  await waitFor(() => openFds() <= baseline + FD_SLACK, 5000).catch(() => {});
  const fds = openFds();
  t.ok(fds <= baseline + FD_SLACK, `open fds back near the baseline (${baseline} before, ${fds} after)`);
}

for (const transport of transports) {
  t.test(`${transport}: clients that reset mid-request`, async (t) => {
    const { proxy, port, errors, exits, idle, baseline } = await setup(t, transport);
    const kinds: Reset[] = ['on-connect', 'half-headers', 'half-body'];
    const resets = Array.from({ length: 30 }, (_, i) => resetClient(port, kinds[i % kinds.length]!));
    const good = Array.from({ length: 20 }, (_, i) =>
      request(port, i % 2 ? { path: '/' } : { path: '/echo', method: 'POST', body: 'y'.repeat(3000) }),
    );
    await Promise.all(resets);
    const replies = await Promise.allSettled(good);
    t.same(
      replies.map((r) => (r.status === 'fulfilled' ? r.value.status : String(r.reason))),
      replies.map(() => 200),
      'requests next to resetting clients succeed',
    );
    await waitFor(idle, 2000).catch(() => {});
    t.same(
      proxy.agents.map((a) => a.connections),
      [0, 0],
      'every reset connection was counted closed',
    );
    t.same(exits, [], 'no worker died of it');
    t.same(errors, [], "no 'error' from the proxy");
    const after = await Promise.allSettled(Array.from({ length: 10 }, () => requestJSON<Info>(port)));
    t.equal(after.filter((r) => r.status === 'fulfilled').length, 10, 'requests succeed afterwards');
    await checkFds(t, baseline);
  });

  t.test(`${transport}: resetting clients do not use up maxConnections`, async (t) => {
    const { port } = await startProxy(t, {
      workerURL: fixture('http-exits.js'),
      workerCount: 2,
      transport,
      maxConnections: 10,
    });
    const kinds: Reset[] = ['on-connect', 'half-headers', 'half-body'];
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 30 }, (_, i) => resetClient(port, kinds[i % kinds.length]!)));
      // Accepted in order: once a later request is answered or refused, the proxy has seen every reset.
      await request(port).catch(() => {});
    }
    // Closed connections are counted out asynchronously: retry, within a deadline, until served.
    let outcome: string[] = [];
    await waitFor(
      async () => {
        const replies = await Promise.allSettled(Array.from({ length: 5 }, () => requestJSON<Info>(port)));
        outcome = replies.map((r) => (r.status === 'fulfilled' ? 'served' : String(r.reason)));
        return outcome.every((o) => o === 'served');
      },
      { timeout: 3000, interval: 100, what: '5 requests at once served' },
    ).catch(atDeadline(undefined));
    t.same(
      outcome,
      ['served', 'served', 'served', 'served', 'served'],
      '5 at once are admitted after 90 clients reset theirs',
    );
  });

  t.test(`${transport}: a worker terminated with connections open`, async (t) => {
    const { proxy, port, errors, idle, baseline } = await setup(t, transport);
    const slow = Array.from({ length: 6 }, () => requestJSON<Info>(port, { path: '/slow?ms=1000' }));
    slow.forEach((p) => p.catch(() => {}));
    await waitFor(() => proxy.agents.reduce((sum, a) => sum + a.connections, 0) === 6, 5000);
    const victim = proxy.agents[0]!;
    const onVictim = victim.connections;
    t.ok(onVictim > 0, `the worker to be terminated has connections (${onVictim})`);
    const replaced = once(proxy, 'worker-online');
    await victim.worker.terminate();
    const slowResults = await Promise.allSettled(slow);
    // With pipe, a connection still on its way over the Unix socket is given to the other worker.
    const lost = slowResults.filter((r) => r.status === 'rejected').length;
    t.ok(lost > 0 && lost <= onVictim, `its clients lost their requests (${lost} of ${onVictim})`);
    t.ok(
      slowResults.every((r) => r.status === 'rejected' || r.value.threadId !== victim.threadId),
      'the other worker served the rest',
    );
    await withDeadline(replaced, 5000, 'replacement worker online');
    t.equal(proxy.agents.filter((a) => a.state === 'ready').length, 2, 'the worker was replaced');
    t.notOk(proxy.agents.includes(victim), 'by a new one');
    const after = await Promise.allSettled(Array.from({ length: 10 }, () => requestJSON<Info>(port)));
    t.equal(after.filter((r) => r.status === 'fulfilled').length, 10, 'requests succeed afterwards');
    t.same(errors, [], "no 'error' from the proxy");
    await waitFor(idle, 5000).catch(() => {});
    await checkFds(t, baseline);
  });

  t.test(`${transport}: a worker that exits by itself with connections open`, async (t) => {
    const { proxy, port, errors, exits, idle, baseline } = await setup(t, transport);
    const held = Array.from({ length: 4 }, () => requestJSON<Info>(port, { path: '/slow?ms=1000' }));
    held.forEach((p) => p.catch(() => {}));
    await waitFor(() => proxy.agents.every((a) => a.connections === 2), 5000);
    const replaced = once(proxy, 'worker-online');
    const exitReply = await request(port, { path: '/exit' }).then(
      () => 'answered',
      (err: Error) => err.message,
    );
    t.not(exitReply, 'answered', '/exit ended its worker before any reply');
    const heldResults = await Promise.allSettled(held);
    t.equal(
      heldResults.filter((r) => r.status === 'rejected').length,
      2,
      "the exiting worker's 2 other clients lost theirs",
    );
    t.equal(heldResults.filter((r) => r.status === 'fulfilled').length, 2, "the other worker's clients were served");
    await withDeadline(replaced, 5000, 'replacement worker online');
    t.equal(exits.length, 1, 'one worker exited');
    t.match(exits[0], /code 1/, 'with its exit code');
    const after = await Promise.allSettled(Array.from({ length: 10 }, () => requestJSON<Info>(port)));
    t.equal(after.filter((r) => r.status === 'fulfilled').length, 10, 'requests succeed afterwards');
    const servedBy = new Set(after.map((r) => (r.status === 'fulfilled' ? r.value.threadId : 0)));
    t.equal(servedBy.size, 2, 'by both workers');
    t.same(errors, [], "no 'error' from the proxy");
    await waitFor(idle, 5000).catch(() => {});
    await checkFds(t, baseline);
  });
}
