import { once } from 'node:events';
import t from 'tap';
import WebSocket from 'ws';
import { fixture, request, startProxy, transports, waitFor } from '../helpers.ts';

interface Hello {
  type: 'hello';
  threadId: number;
  remote?: string;
  path: string;
}

/** Messages as they arrive, read one at a time in order. */
function inbox(ws: WebSocket): () => Promise<{ data: Buffer; isBinary: boolean }> {
  const queued: { data: Buffer; isBinary: boolean }[] = [];
  const waiting: ((message: { data: Buffer; isBinary: boolean }) => void)[] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const message = { data, isBinary };
    const next = waiting.shift();
    if (next) next(message);
    else queued.push(message);
  });
  return () => {
    const message = queued.shift();
    if (message) return Promise.resolve(message);
    return new Promise((resolve, reject) => {
      waiting.push(resolve);
      ws.once('close', () => reject(new Error('the connection closed while a message was awaited')));
    });
  };
}

async function open(
  port: number,
  localAddress: string,
  path = '/',
): Promise<{ ws: WebSocket; next: ReturnType<typeof inbox> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { localAddress });
  const next = inbox(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected HTTP ${res.statusCode}`)));
  });
  return { ws, next };
}

for (const transport of transports) {
  t.test(`${transport}: WebSocket connections through the proxy`, async (t) => {
    const { proxy, port } = await startProxy(t, { workerURL: fixture('ws-server.js'), workerCount: 2, transport });
    t.equal(proxy.transport, transport);

    t.test('the upgrade works and 20 messages go both ways', async (t) => {
      const { ws, next } = await open(port, '127.0.0.70', '/chat?room=1');
      t.teardown(() => ws.terminate());
      const hello = JSON.parse((await next()).data.toString()) as Hello;
      t.equal(hello.type, 'hello');
      t.equal(hello.remote, '127.0.0.70', "the upgrade handler saw the client's bound address");
      t.equal(hello.path, '/chat?room=1');

      for (let i = 0; i < 20; i++) {
        // Alternate text and binary frames, of growing size.
        const binary = i % 2 === 1;
        const payload = binary ? Buffer.alloc(1 + i * 997, i) : `message ${i} ${'x'.repeat(i * 50)}`;
        ws.send(payload, { binary });
        const reply = await next();
        t.equal(reply.isBinary, binary, `message ${i}: same frame type`);
        t.ok(reply.data.equals(Buffer.from(payload)), `message ${i}: same payload`);
      }

      ws.close(1000, 'done');
      const [code] = (await once(ws, 'close')) as [number, Buffer];
      t.equal(code, 1000, 'a clean close');
    });

    t.test('several clients at once, each seen with its own address', async (t) => {
      const addresses = ['127.0.0.71', '127.0.0.72', '127.0.0.73', '127.0.0.74'];
      const clients = await Promise.all(addresses.map((address) => open(port, address)));
      t.teardown(() => clients.forEach(({ ws }) => ws.terminate()));
      const threads = new Set<number>();
      for (const [i, { next }] of clients.entries()) {
        const hello = JSON.parse((await next()).data.toString()) as Hello;
        t.equal(hello.remote, addresses[i]);
        threads.add(hello.threadId);
      }
      t.equal(threads.size, 2, 'both workers hold WebSocket connections');

      // Interleave the clients' messages: each must get back only its own.
      for (let i = 0; i < 20; i++) {
        for (const [c, { ws }] of clients.entries()) ws.send(`client ${c} message ${i}`);
        for (const [c, { next }] of clients.entries()) {
          t.equal((await next()).data.toString(), `client ${c} message ${i}`);
        }
      }
      await Promise.all(
        clients.map(async ({ ws }) => {
          ws.close();
          await once(ws, 'close');
        }),
      );
    });

    t.test('plain HTTP on the same server still answers', async (t) => {
      const reply = await request(port, { localAddress: '127.0.0.75' });
      t.equal(reply.status, 426);
    });

    t.test('closed WebSocket connections are reported closed', async (t) => {
      await waitFor(() => proxy.agents.every((agent) => agent.connections === 0));
      t.equal(
        proxy.agents.reduce((sum, agent) => sum + agent.totalConnections, 0),
        1 + 4 + 1,
        'each connection reached a worker once',
      );
    });
  });
}
