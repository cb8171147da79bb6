import { once } from 'node:events';
import t from 'tap';
import WebSocket from 'ws';
import { fixture, request, startProxy, transports, waitFor } from './helpers.ts';

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
    proxy.on('worker-exit', (handle: { threadId: number }, _code: number, reason: string) => exits.push({ threadId: handle.threadId, reason }));

    await proxy.reload({ timeout: 300 });
    t.same(exits, [{ threadId, reason: 'retired' }], 'reload() resolved once the old worker was gone, stopped as retired');
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

t.test('reload() and shutdown() reject a bad timeout with a coded error, and keep serving', async (t) => {
  const { proxy, port } = await startProxy(t, { workerURL: fixture('ws-server.js'), workerCount: 1 });
  t.throws(() => proxy.reload({ timeout: -1 }), { code: 'SOCKETNAUT_ERR_OPTION_OUT_OF_RANGE', message: /"timeout"/ });
  t.throws(() => proxy.reload({ timeout: 1.5 }), { code: 'SOCKETNAUT_ERR_OPTION_OUT_OF_RANGE' });
  t.throws(() => proxy.reload({ timeout: '100' as never }), { code: 'SOCKETNAUT_ERR_INVALID_OPTION', message: /"timeout"/ });
  t.throws(() => proxy.shutdown({ timeout: Number.NaN }), { code: 'SOCKETNAUT_ERR_INVALID_OPTION' });
  t.equal((await request(port)).status, 426, 'the proxy still serves');
  t.equal((await proxy.stats()).reloads, 0, 'no reload was counted');
});
