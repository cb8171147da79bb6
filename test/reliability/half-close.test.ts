import crypto from 'node:crypto';
import net from 'node:net';
import t from 'tap';
import { atDeadline, fdsOf, now, pattern, startChildProxy, transports, waitFor, type ChildProxy } from './helpers.ts';

const REPLY_BYTES = 256 * 1024;
const PEERS = 500;
// Of the peers, these ask for more than the kernel's buffers hold, so their reply stalls until the
// server's own idle timeout. Few, because each stalled connection pins megabytes of kernel memory.
const STALLED_PEERS = 20;
const STALLED_REPLY_BYTES = 32 * 1024 * 1024;
const SERVER_TIMEOUT_MS = 2000;
const GRACE_MS = 10_000;
const FD_TOLERANCE = 10;

/** Sends `request`, ends its side at once, and reads the whole reply. */
function sendThenEnd(port: number, request: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1', () => socket.end(request));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('no complete reply within 10 s')));
  });
}

/** Connects, sends `request`, ends its side, and then neither reads nor closes. */
function halfOpenPeer(port: number, request: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.pause();
      socket.end(request, () => resolve(socket));
    });
    socket.once('error', reject);
  });
}

function connectionsOf(snapshot: Awaited<ReturnType<ChildProxy['snapshot']>>): number {
  return snapshot.stats.workers.reduce((sum, worker) => sum + worker.connections, 0);
}

for (const transport of transports) {
  t.test(`${transport}: a client that ends its side after sending still gets the whole reply`, async (t) => {
    t.test('http', async (t) => {
      const proxy = await startChildProxy(t, { transport, workerCount: 2 });
      for (let i = 0; i < 5; i++) {
        const raw = await sendThenEnd(
          proxy.port,
          Buffer.from(`GET /blob?bytes=${REPLY_BYTES} HTTP/1.1\r\nHost: x\r\n\r\n`),
        );
        const split = raw.indexOf('\r\n\r\n');
        t.match(raw.subarray(0, split).toString('latin1'), /^HTTP\/1\.1 200 /);
        t.ok(
          raw.subarray(split + 4).equals(pattern(REPLY_BYTES)),
          `reply ${i + 1}: the body arrived whole (${raw.length - split - 4} bytes)`,
        );
      }
    });
    t.test('raw TCP', async (t) => {
      const proxy = await startChildProxy(t, { transport, workerCount: 2, app: 'net-halfclose.js' });
      for (let i = 0; i < 5; i++) {
        const request = Buffer.concat([Buffer.from(`REPLY ${REPLY_BYTES}\n`), crypto.randomBytes(100_000)]);
        const raw = await sendThenEnd(proxy.port, request);
        const newline = raw.indexOf('\n');
        t.equal(
          raw.subarray(0, newline).toString(),
          `${request.length} ${crypto.createHash('sha256').update(request).digest('hex')}`,
          `reply ${i + 1}: the server read everything sent before the end`,
        );
        t.ok(raw.subarray(newline + 1).equals(pattern(REPLY_BYTES)), `reply ${i + 1}: the reply arrived whole`);
      }
    });
  });

  for (const app of ['http', 'raw TCP'] as const) {
    t.test(
      `${transport}, ${app}: ${PEERS} half-open peers are all gone ${GRACE_MS / 1000} s after the server's timeout`,
      async (t) => {
        const proxy = await startChildProxy(t, {
          transport,
          workerCount: 2,
          app: app === 'http' ? 'app.js' : 'net-halfclose.js',
          appConfig: { socketTimeout: SERVER_TIMEOUT_MS },
        });
        const small = app === 'http' ? `GET /blob?bytes=65536 HTTP/1.1\r\nHost: x\r\n\r\n` : 'REPLY 65536\n';
        const large =
          app === 'http'
            ? `GET /big?bytes=${STALLED_REPLY_BYTES} HTTP/1.1\r\nHost: x\r\n\r\n`
            : `REPLY ${STALLED_REPLY_BYTES}\n`;
        await sendThenEnd(proxy.port, Buffer.from(small));
        const baseline = fdsOf(proxy.pid);

        const peers: net.Socket[] = [];
        t.teardown(() => peers.forEach((peer) => peer.destroy()));
        for (let i = 0; i < PEERS; i += 50) {
          const batch = Array.from({ length: Math.min(50, PEERS - i) }, (_, j) =>
            halfOpenPeer(proxy.port, i + j < STALLED_PEERS ? large : small),
          );
          peers.push(...(await Promise.all(batch)));
        }
        const connected = now();
        const peak = fdsOf(proxy.pid);

        // Gone means: the proxy's descriptors back near where they were, and no connection counted open.
        let fds = peak;
        let open = -1;
        const goneAfter = await waitFor(
          async () => {
            fds = fdsOf(proxy.pid);
            open = connectionsOf(await proxy.snapshot());
            return fds <= baseline + FD_TOLERANCE && open === 0;
          },
          {
            timeout: connected + SERVER_TIMEOUT_MS + GRACE_MS - now(),
            interval: 100,
            what: 'the half-open peers gone',
          },
        ).then(() => now() - connected, atDeadline(undefined));
        t.comment(
          `${transport}, ${app}: proxy fds: ${baseline} before, ${peak} with ${PEERS} peers, ${fds} ` +
            `${goneAfter === undefined ? `after ${(SERVER_TIMEOUT_MS + GRACE_MS) / 1000} s` : `${(goneAfter / 1000).toFixed(1)} s later`}; ` +
            `worker connections then: ${open}`,
        );
        t.ok(
          fds <= baseline + FD_TOLERANCE,
          `the proxy's open fds came back to within ${FD_TOLERANCE} of ${baseline} (last ${fds})`,
        );
        t.equal(open, 0, 'the workers hold no connection');
        const reply = await sendThenEnd(proxy.port, Buffer.from(small));
        t.ok(reply.length > 65536, 'the proxy still serves');
      },
    );
  }
}
