import crypto from 'node:crypto';
import http from 'node:http';
import t from 'tap';
import { fixture, request, startProxy, transports } from '../helpers.ts';

const MB = 1024 * 1024;

const sha256 = (data: Buffer): string => crypto.createHash('sha256').update(data).digest('hex');

/** POSTs `body` in chunks of `chunkSize` with chunked transfer encoding; resolves with the reply body. */
function postChunked(
  port: number,
  body: Buffer,
  chunkSize: number,
  localAddress: string,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/echo', agent: false, localAddress },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    let offset = 0;
    // Honour backpressure, so the body really streams instead of sitting in one buffer.
    const writeMore = (): void => {
      while (offset < body.length) {
        const chunk = body.subarray(offset, offset + chunkSize);
        offset += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', writeMore);
          return;
        }
      }
      req.end();
    };
    writeMore();
  });
}

for (const transport of transports) {
  t.test(`${transport}: 1 MB bodies are echoed byte for byte`, async (t) => {
    const { proxy, port } = await startProxy(t, { workerURL: fixture('http-server.js'), workerCount: 2, transport });
    t.equal(proxy.transport, transport);

    t.test('one body with a content-length', async (t) => {
      const body = crypto.randomBytes(MB);
      const reply = await request(port, { method: 'POST', path: '/echo', body, localAddress: '127.0.0.80' });
      t.equal(reply.status, 200);
      t.equal(reply.body.length, MB);
      t.equal(sha256(reply.body), sha256(body));
    });

    t.test('several bodies in parallel, with a content-length and chunked', async (t) => {
      const bodies = Array.from({ length: 6 }, () => crypto.randomBytes(MB));
      const replies = await Promise.all(
        bodies.map((body, i) => {
          const localAddress = `127.0.0.${81 + i}`;
          return i % 2 === 0
            ? request(port, { method: 'POST', path: '/echo', body, localAddress })
            : postChunked(port, body, 1000 + i * 4093, localAddress);
        }),
      );
      for (const [i, reply] of replies.entries()) {
        t.equal(reply.status, 200, `body ${i}: status`);
        t.equal(reply.body.length, MB, `body ${i}: length`);
        t.equal(sha256(reply.body), sha256(bodies[i]!), `body ${i}: sha256`);
      }
    });

    t.test('several bodies in sequence on one keep-alive connection', async (t) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      t.teardown(() => agent.destroy());
      for (let i = 0; i < 3; i++) {
        const body = crypto.randomBytes(MB);
        const reply = await request(port, { method: 'POST', path: '/echo', body, agent, localAddress: '127.0.0.90' });
        t.equal(sha256(reply.body), sha256(body), `body ${i}: sha256`);
      }
      const total = proxy.agents.reduce((sum, handle) => sum + handle.totalConnections, 0);
      t.equal(total, 1 + 6 + 1, 'the three requests shared one connection');
    });
  });
}
