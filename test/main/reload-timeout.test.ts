import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import t from 'tap';
import WebSocket from 'ws';
import { fixture, request, startProxy, transports, waitFor } from '../helpers.ts';

async function openSocket(port: number): Promise<{ ws: WebSocket; threadId: number }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const [hello] = (await once(ws, 'message')) as [Buffer];
  return { ws, threadId: (JSON.parse(hello.toString()) as { threadId: number }).threadId };
}

for (const transport of transports) {
  t.test(`${transport}: reload({ timeout }) stops an old worker that a WebSocket keeps open`, async (t) => {
    const { proxy, port } = await startProxy(t, { workerURL: fixture('ws-server.js'), workerCount: 1, transport });
    const { ws, threadId } = await openSocket(port);
    t.teardown(() => ws.terminate());
    const closed = once(ws, 'close');
    const exits: { threadId: number; reason: string }[] = [];
    proxy.on('worker-exit', (handle: { threadId: number }, _code: number, reason: string) =>
      exits.push({ threadId: handle.threadId, reason }),
    );

    let retiredAt = 0;
    proxy.on('worker-online', () => (retiredAt = performance.now()));
    await proxy.reload({ timeout: 300 });
    const heldFor = performance.now() - retiredAt;
    t.same(
      exits,
      [{ threadId, reason: 'retired' }],
      'reload() resolved once the old worker was gone, stopped as retired',
    );
    t.ok(
      heldFor >= 250,
      `the old worker kept its connection until the deadline (${heldFor.toFixed(0)} ms after its successor served)`,
    );
    await closed;
    t.pass('the WebSocket that held it was closed');

    const reply = await request(port);
    t.equal(reply.status, 426, 'the new worker serves');
    t.equal(proxy.agents.length, 1, 'one worker, the new one');
    t.not(proxy.agents[0]!.threadId, threadId);
  });

  t.test(`${transport}: an old worker whose connections finish within the timeout drains by itself`, async (t) => {
    const { proxy, port } = await startProxy(t, { workerURL: fixture('ws-server.js'), workerCount: 1, transport });
    const { ws, threadId } = await openSocket(port);
    t.teardown(() => ws.terminate());
    const reloaded = proxy.reload({ timeout: 60_000 });
    await waitFor(() => proxy.agents.some((agent) => agent.threadId === threadId && agent.state === 'retiring'));
    const closed = once(ws, 'close');
    ws.close(1000);
    const [code] = (await closed) as [number];
    await reloaded;
    t.equal(code, 1000, 'the session ended as the client asked; the deadline, far off, cut nothing');
    t.equal(proxy.agents.length, 1, 'the old worker stopped once its last connection closed');
  });
}

t.test('pipe: a client that stopped reading is cut after its worker was stopped at the deadline', async (t) => {
  const { proxy, port } = await startProxy(t, {
    workerURL: new URL('../reliability/fixtures/app.js', import.meta.url),
    workerCount: 1,
    transport: 'pipe',
  });
  const openFds = (): number => fs.readdirSync('/proc/self/fd').length;
  const idle = openFds();
  // A download far larger than the socket buffers, by a client that never reads it: the main thread's
  // reads from the worker stop behind it, so they alone would never see the worker go.
  const socket = net.connect(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  socket.pause();
  socket.write('GET /big?bytes=268435456 HTTP/1.1\r\nhost: localhost\r\n\r\n');
  // The client's socket, the main thread's two and the worker's: the download is under way.
  await waitFor(() => openFds() === idle + 4);
  await proxy.reload({ timeout: 200 });
  // Once the client has taken nothing for a few seconds, only its own descriptor is left.
  await waitFor(() => openFds() <= idle + 1, 15_000);
  t.pass("the main thread closed the client's connection and the worker's socket");
});

t.test('reload() and shutdown() reject a bad timeout with a coded error, and keep serving', async (t) => {
  const { proxy, port } = await startProxy(t, { workerURL: fixture('ws-server.js'), workerCount: 1 });
  await t.rejects(proxy.reload({ timeout: -1 }), { code: 'SOCKETNAUT_ERR_OPTION_OUT_OF_RANGE', message: /"timeout"/ });
  await t.rejects(proxy.reload({ timeout: 1.5 }), { code: 'SOCKETNAUT_ERR_OPTION_OUT_OF_RANGE' });
  // Node would run a longer timer after 1 ms, and stop the old workers at once.
  await t.rejects(proxy.reload({ timeout: 2 ** 31 }), {
    code: 'SOCKETNAUT_ERR_OPTION_OUT_OF_RANGE',
    message: /2147483647/,
  });
  await t.rejects(proxy.reload({ timeout: '100' as never }), {
    code: 'SOCKETNAUT_ERR_INVALID_OPTION',
    message: /"timeout"/,
  });
  await t.rejects(proxy.shutdown({ timeout: Number.NaN }), { code: 'SOCKETNAUT_ERR_INVALID_OPTION' });
  t.equal((await request(port)).status, 426, 'the proxy still serves');
  t.equal((await proxy.stats()).reloads, 0, 'no reload was counted');
});
