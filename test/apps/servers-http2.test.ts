import crypto from 'node:crypto';
import { once } from 'node:events';
import http2 from 'node:http2';
import https from 'node:https';
import t from 'tap';
import { fixture, startProxy, transports, waitFor, withDeadline } from '../helpers.ts';

interface Info {
  threadId: number;
  path: string;
  alpn: string;
  encrypted: boolean;
  remote?: { address: string; port: number };
}

// http2.connect() takes net.connect()'s localAddress, which its type does not list.
function connect(port: number, localAddress: string): Promise<http2.ClientHttp2Session> {
  const options = { rejectUnauthorized: false, localAddress } as http2.SecureClientSessionOptions;
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, options);
    session.once('error', reject);
    session.once('connect', () => {
      session.off('error', reject);
      resolve(session);
    });
  });
}

function fetch(
  session: http2.ClientHttp2Session,
  path: string,
  body?: Buffer,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ':method': body ? 'POST' : 'GET' });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (headers) => {
      status = Number(headers[':status']);
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ status, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
    stream.end(body);
  });
}

for (const transport of transports) {
  t.test(`${transport}: an HTTP/2 server in the worker`, async (t) => {
    const { proxy, port } = await startProxy(t, {
      workerURL: fixture('http2-secure-server.js'),
      workerCount: 2,
      transport,
    });
    t.equal(proxy.transport, transport);

    t.test('several streams on one session see the same client address', async (t) => {
      const session = await connect(port, '127.0.0.60');
      t.teardown(() => session.destroy());
      t.equal(session.alpnProtocol, 'h2');
      const localPort = session.socket.localPort;

      const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => fetch(session, `/stream/${i}`)));
      const threads = new Set<number>();
      for (const [i, reply] of replies.entries()) {
        t.equal(reply.status, 200);
        const info = JSON.parse(reply.body.toString()) as Info;
        t.equal(info.path, `/stream/${i}`, 'each stream got its own response');
        t.equal(info.alpn, 'h2');
        t.equal(info.encrypted, true);
        t.equal(info.remote?.address, '127.0.0.60', "the handler saw the client's address");
        t.equal(info.remote?.port, localPort, "the handler saw the client's port");
        threads.add(info.threadId);
      }
      t.equal(threads.size, 1, 'one session is one connection, served by one worker');
    });

    t.test('request bodies stream through in both directions', async (t) => {
      const session = await connect(port, '127.0.0.61');
      t.teardown(() => session.destroy());
      const bodies = Array.from({ length: 4 }, () => crypto.randomBytes(300_000));
      const replies = await Promise.all(bodies.map((body) => fetch(session, '/echo', body)));
      for (const [i, reply] of replies.entries()) {
        t.equal(reply.status, 200);
        t.ok(reply.body.equals(bodies[i]!), `stream ${i}: the echoed body matches`);
      }
    });

    t.test('sessions from several clients, each seen with its own address', async (t) => {
      const addresses = ['127.0.0.62', '127.0.0.63', '127.0.0.64', '127.0.0.65'];
      const sessions = await Promise.all(addresses.map((address) => connect(port, address)));
      t.teardown(() => sessions.forEach((session) => session.destroy()));
      const threads = new Set<number>();
      for (const [i, session] of sessions.entries()) {
        const replies = await Promise.all([fetch(session, '/a'), fetch(session, '/b'), fetch(session, '/c')]);
        for (const reply of replies) {
          const info = JSON.parse(reply.body.toString()) as Info;
          t.equal(info.remote?.address, addresses[i]);
          threads.add(info.threadId);
        }
      }
      t.equal(threads.size, 2, 'both workers served');
      await Promise.all(sessions.map((session) => new Promise<void>((resolve) => session.close(() => resolve()))));
    });

    t.test('an HTTP/1.1 client is refused, as allowHTTP1 is false', async (t) => {
      const outcome = await new Promise<string>((resolve) => {
        const req = https.get(
          { host: '127.0.0.1', port, agent: false, rejectUnauthorized: false, localAddress: '127.0.0.66' },
          (res) => {
            res.resume();
            resolve(`HTTP ${res.statusCode}`);
          },
        );
        req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      });
      t.equal(outcome, 'HTTP 403', 'the worker refuses a client without h2');
      // The worker is still serving HTTP/2 after refusing it.
      const session = await connect(port, '127.0.0.67');
      t.teardown(() => session.destroy());
      const info = JSON.parse((await fetch(session, '/')).body.toString()) as Info;
      t.equal(info.remote?.address, '127.0.0.67');
      session.destroy();
      await waitFor(() => proxy.agents.every((agent) => agent.connections === 0));
      t.pass('the refused connection was closed and reported');
    });

    t.test('a closed session is reported closed to the proxy', async (t) => {
      const session = await connect(port, '127.0.0.68');
      await fetch(session, '/');
      const open = proxy.agents.reduce((sum, agent) => sum + agent.connections, 0);
      t.equal(open, 1, 'the open session counts as one connection');
      session.close();
      await once(session, 'close');
      await waitFor(() => proxy.agents.every((agent) => agent.connections === 0));
      t.pass('no connection left open');
    });

    t.test('at a reload, an open session is sent GOAWAY, and its client reaches a new worker', async (t) => {
      const session = await connect(port, '127.0.0.69');
      t.teardown(() => session.destroy());
      const before = (JSON.parse((await fetch(session, '/')).body.toString()) as Info).threadId;
      const goaway = once(session, 'goaway');
      const reloaded = proxy.reload({ timeout: 10_000 });
      const [code] = (await withDeadline(goaway, 5_000, 'GOAWAY on the open session')) as [number];
      t.equal(code, http2.constants.NGHTTP2_NO_ERROR, 'a graceful GOAWAY');
      await withDeadline(reloaded, 10_000, 'the reload, without waiting for the client to leave');
      const next = await connect(port, '127.0.0.69');
      t.teardown(() => next.destroy());
      const after = (JSON.parse((await fetch(next, '/')).body.toString()) as Info).threadId;
      t.not(after, before, 'a new session is served by a new worker');
    });
  });
}
