import crypto from 'node:crypto';
import net from 'node:net';
import t from 'tap';
import { fixture, startProxy, transports, waitFor } from '../helpers.ts';

interface Session {
  socket: net.Socket;
  /** Everything the server sent, from the first byte, until it ended the connection. */
  received: Promise<Buffer>;
}

function connect(port: number, localAddress: string): Promise<Session> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const received = new Promise<Buffer>((resolveReceived, rejectReceived) => {
      socket.once('end', () => resolveReceived(Buffer.concat(chunks)));
      socket.once('error', rejectReceived);
    });
    received.catch(() => {});
    socket.once('error', reject);
    socket.once('connect', () => resolve({ socket, received }));
  });
}

/** Resolves with the greeting line once it has fully arrived, leaving later bytes in the stream. */
function readLine(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf(0x0a);
      if (end === -1) return;
      socket.off('data', onData);
      socket.off('error', reject);
      resolve(buffered.subarray(0, end).toString());
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

function splitGreeting(all: Buffer): { greeting: string; rest: Buffer } {
  const end = all.indexOf(0x0a);
  return end === -1
    ? { greeting: all.toString(), rest: Buffer.alloc(0) }
    : { greeting: all.subarray(0, end).toString(), rest: all.subarray(end + 1) };
}

const sha256 = (data: Buffer): string => crypto.createHash('sha256').update(data).digest('hex');

for (const transport of transports) {
  t.test(`${transport}: a raw TCP server in the worker`, async (t) => {
    const { proxy, port } = await startProxy(t, { workerURL: fixture('net-echo.js'), workerCount: 2, transport });
    t.equal(proxy.transport, transport);

    t.test('the greeting names the address the client bound', async (t) => {
      for (const localAddress of ['127.0.0.50', '127.0.0.51', '127.0.0.52']) {
        const { socket, received } = await connect(port, localAddress);
        t.teardown(() => socket.destroy());
        t.equal(await readLine(socket), `hello ${localAddress}`);
        socket.end();
        await received;
      }
    });

    t.test('echoed bytes come back byte for byte, exchange by exchange', async (t) => {
      const { socket, received } = await connect(port, '127.0.0.53');
      t.teardown(() => socket.destroy());
      t.equal(await readLine(socket), 'hello 127.0.0.53');
      const transcript: Buffer[] = [Buffer.from('hello 127.0.0.53\n')];
      for (let round = 0; round < 5; round++) {
        // Every byte value, including newlines and zeros, in a size that is not a power of two.
        const sent = crypto.randomBytes(1000 + round * 7919);
        transcript.push(sent);
        const echoed = new Promise<Buffer>((resolve, reject) => {
          const chunks: Buffer[] = [];
          let length = 0;
          const onData = (chunk: Buffer): void => {
            chunks.push(chunk);
            length += chunk.length;
            if (length < sent.length) return;
            socket.off('data', onData);
            resolve(Buffer.concat(chunks));
          };
          socket.on('data', onData);
          socket.once('error', reject);
        });
        socket.write(sent);
        const back = await echoed;
        t.equal(back.length, sent.length, `round ${round}: as many bytes as were sent`);
        t.ok(back.equals(sent), `round ${round}: the same bytes`);
      }
      socket.end();
      t.ok((await received).equals(Buffer.concat(transcript)), 'nothing more, nothing less, in order');
    });

    t.test('a client that writes and then ends still receives the full echo', async (t) => {
      const { socket, received } = await connect(port, '127.0.0.54');
      t.teardown(() => socket.destroy());
      t.equal(await readLine(socket), 'hello 127.0.0.54');
      const sent = crypto.randomBytes(512 * 1024);
      socket.end(sent);
      const { greeting, rest } = splitGreeting(await received);
      t.equal(greeting, 'hello 127.0.0.54');
      t.equal(rest.length, sent.length, 'every byte came back');
      t.equal(sha256(rest), sha256(sent), 'the same bytes');
    });

    t.test('a client that writes and ends before the greeting still gets greeting and echo', async (t) => {
      const sent = crypto.randomBytes(256 * 1024);
      const clients = await Promise.all(
        ['127.0.0.55', '127.0.0.56', '127.0.0.57', '127.0.0.58'].map(async (localAddress) => {
          const session = await connect(port, localAddress);
          t.teardown(() => session.socket.destroy());
          session.socket.end(sent);
          return { localAddress, session };
        }),
      );
      for (const { localAddress, session } of clients) {
        const { greeting, rest } = splitGreeting(await session.received);
        t.equal(greeting, `hello ${localAddress}`);
        t.equal(rest.length, sent.length, `${localAddress}: every byte came back`);
        t.equal(sha256(rest), sha256(sent), `${localAddress}: the same bytes`);
      }
    });

    t.test('a client that only ends gets the greeting and then the end', async (t) => {
      const { socket, received } = await connect(port, '127.0.0.59');
      t.teardown(() => socket.destroy());
      socket.end();
      t.equal((await received).toString(), 'hello 127.0.0.59\n');
    });

    t.test('every connection is reported closed to the proxy', async (t) => {
      await waitFor(() => proxy.agents.every((agent) => agent.connections === 0));
      const total = proxy.agents.reduce((sum, agent) => sum + agent.totalConnections, 0);
      t.equal(total, 3 + 1 + 1 + 4 + 1, 'each client connection reached a worker once');
    });
  });
}

for (const transport of transports) {
  t.test(`${transport}: a half-open server replies after the client's end`, async (t) => {
    const { port } = await startProxy(t, { workerURL: fixture('net-digest.js'), workerCount: 1, transport });
    const cases = [
      { localAddress: '127.0.0.60', sent: Buffer.alloc(0) },
      { localAddress: '127.0.0.61', sent: crypto.randomBytes(17) },
      { localAddress: '127.0.0.62', sent: crypto.randomBytes(700 * 1024) },
    ];
    await Promise.all(
      cases.map(async ({ localAddress, sent }) => {
        const { socket, received } = await connect(port, localAddress);
        t.teardown(() => socket.destroy());
        socket.end(sent);
        t.equal(
          (await received).toString(),
          `${localAddress} ${sent.length} ${sha256(sent)}\n`,
          `${sent.length} bytes`,
        );
      }),
    );
  });
}
