import { once } from 'node:events';
import net from 'node:net';
import t, { type Test } from 'tap';
import { consoleHandler, createServiceProxy, Level, type ServiceProxy } from 'socketnaut';
import { fixture, requestJSON, waitFor } from '../helpers.ts';
import { skipUnlessSupported } from '../transport-support.ts';

// With reuseport, the workers accept on the public port themselves: nothing is handed off, nothing
// measured. What the main thread does accept and hand off is measured, as with the handoff
// transport: the connections of the app's other servers, and those of the public port while no
// worker holds a listener of it (at start-up). measureHandoffLatency emits 'handoff-latency' for those.

consoleHandler.setLevel(Level.ERROR);

const REQUESTS = 10;
/** A hand-off on loopback takes well under this. */
const SANE_SECONDS = 5;

/** Starts a reuseport proxy measuring hand-offs, its workers running second-server.js, with every 'handoff-latency' collected. */
async function startMeasured(
  t: Test,
  /** Called as soon as the proxy is created, before it is ready. */
  starting?: (port: number) => void,
): Promise<{ proxy: ServiceProxy; port: number; latencies: number[] }> {
  const server = net.createServer();
  server.listen({ port: 0, host: '127.0.0.1', reusePort: true });
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const proxy = createServiceProxy({
    server,
    workerURL: fixture('second-server.js'),
    workerCount: 2,
    transport: 'reuseport',
    measureHandoffLatency: true,
    // The app's admin server listens on a port of its own, which the main thread opens for it.
    workerOptions: { env: { ...process.env, ADMIN: '0' } },
  });
  t.teardown(() => proxy.shutdown({ timeout: 2000 }));
  starting?.(port);
  const latencies: number[] = [];
  proxy.on('handoff-latency', (seconds: number) => latencies.push(seconds));
  const failed = once(proxy, 'error').then(([err]) => Promise.reject(err as Error));
  await Promise.race([once(proxy, 'ready'), failed]);
  t.equal(proxy.transport, 'reuseport');
  return { proxy, port, latencies };
}

function sane(t: Test, latencies: number[]): void {
  t.ok(
    latencies.every((seconds) => Number.isFinite(seconds) && seconds >= 0 && seconds < SANE_SECONDS),
    'each a sane number of seconds',
    { latencies },
  );
}

t.test(
  "the connections of an app's other server are handed off and measured",
  { skip: skipUnlessSupported('reuseport') },
  async (t) => {
    const { proxy, latencies } = await startMeasured(t);
    const admin = await waitFor(
      async () => (await proxy.stats()).listeners.find((listener) => listener.workers === 2)?.address,
      { what: 'the admin port shared by both workers' },
    );
    const adminPort = (admin as net.AddressInfo).port;
    const before = latencies.length;
    for (let i = 0; i < REQUESTS; i++) await requestJSON(adminPort);
    await waitFor(() => latencies.length - before >= REQUESTS, {
      what: () => `a 'handoff-latency' per admin connection (got ${latencies.length - before} of ${REQUESTS})`,
    });
    t.equal(latencies.length - before, REQUESTS, 'one per connection handed off');
    sane(t, latencies);
  },
);

t.test(
  'the connections the main thread accepts on the public port at start-up are measured',
  { skip: skipUnlessSupported('reuseport') },
  async (t) => {
    const clients: net.Socket[] = [];
    // Connected as the proxy starts: the main thread accepts them, holding every listener until a
    // worker serves, and hands them off once one does.
    const { latencies } = await startMeasured(t, (port) => {
      // Closed before the proxy shuts down, which would wait for them.
      t.teardown(() => clients.forEach((socket) => socket.destroy()));
      for (let i = 0; i < REQUESTS; i++) {
        const socket = net.connect(port, '127.0.0.1');
        socket.on('error', () => {});
        clients.push(socket);
      }
    });
    await waitFor(() => latencies.length >= REQUESTS, {
      what: () => `a 'handoff-latency' per early connection (got ${latencies.length} of ${REQUESTS})`,
    });
    t.equal(latencies.length, REQUESTS, 'one per connection handed off');
    sane(t, latencies);
  },
);
