import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import t from 'tap';
import { connectOutcome, fixture, freePort, request, requestJSON, transports, waitFor } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';

// An app's other server (a metrics or admin port) works in every worker, as under node:cluster:
// opened once on the main thread, its connections shared among the workers listening there.
const app = fixture('second-server.js').pathname;
const REQUESTS = 20;

interface AppReply {
  threadId: number;
  adminListening: boolean;
  adminAddress: net.AddressInfo | string | null;
  adminError: { code: string; syscall: string } | null;
  adminClosed: boolean;
}

interface AdminReply {
  threadId: number;
  admin: true;
}

function requestUnix(socketPath: string): Promise<AdminReply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(JSON.parse(body) as AdminReply));
    });
    req.on('error', reject);
  });
}

async function servedBy(ask: () => Promise<AdminReply>): Promise<Map<number, number>> {
  const threads = new Map<number, number>();
  for (let i = 0; i < REQUESTS; i++) {
    const reply = await ask();
    threads.set(reply.threadId, (threads.get(reply.threadId) ?? 0) + 1);
  }
  return threads;
}

for (const transport of transports) {
  t.test(`${transport}: an admin server on listen(0) gets one port, shared by every worker`, async (t) => {
    const launcher = await startLauncher(t, [app, '--workers', '2', '--transport', transport], { ADMIN: '0' });
    const first = await requestJSON<AppReply>(launcher.port);
    t.equal(first.adminError, null, 'no error');
    t.ok(first.adminListening, 'the admin server listens');
    const address = first.adminAddress as net.AddressInfo;
    t.equal(address.address, '127.0.0.1', 'address() gives the address bound');
    t.not(address.port, 0, 'and the port the main thread chose');
    const others = await waitFor(
      async () => {
        const reply = await requestJSON<AppReply>(launcher.port);
        return reply.threadId !== first.threadId ? reply : undefined;
      },
      { what: 'a reply from the other worker' },
    );
    t.same(others.adminAddress, first.adminAddress, 'the other worker reports the same port');

    const threads = await servedBy(() => requestJSON<AdminReply>(address.port));
    t.equal(
      [...threads.values()].reduce((a, b) => a + b, 0),
      REQUESTS,
      `${REQUESTS} of ${REQUESTS} answered`,
    );
    t.equal(threads.size, 2, `by both workers (${[...threads.values()].join(' and ')})`);
    t.notMatch(launcher.stderr(), /EADDRINUSE/, 'no EADDRINUSE anywhere');

    // Once both workers close it, the port closes.
    const closedBy = new Set<number>();
    await waitFor(
      async () => {
        const reply = await requestJSON<AppReply>(launcher.port, { path: '/close-admin' });
        closedBy.add(reply.threadId);
        return closedBy.size === 2;
      },
      { what: 'both workers to close their admin server' },
    );
    await waitFor(async () => (await connectOutcome(address.port)) === 'ECONNREFUSED', {
      what: 'the admin port to close',
    });
    t.pass('the admin port is closed once the last worker closed its server');
    t.equal((await requestJSON<AppReply>(launcher.port)).adminClosed, true, "the worker's server emitted 'close'");
  });

  t.test(`${transport}: an admin server on a Unix socket is shared by every worker`, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socketnaut-admin-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const socketPath = path.join(dir, 'admin.sock');
    const launcher = await startLauncher(t, [app, '--workers', '2', '--transport', transport], { ADMIN: socketPath });
    const reply = await requestJSON<AppReply>(launcher.port);
    t.equal(reply.adminAddress, socketPath, 'address() gives the path');
    const threads = await servedBy(() => requestUnix(socketPath));
    t.equal(
      [...threads.values()].reduce((a, b) => a + b, 0),
      REQUESTS,
      `${REQUESTS} of ${REQUESTS} answered`,
    );
    t.equal(threads.size, 2, `by both workers (${[...threads.values()].join(' and ')})`);
    t.notMatch(launcher.stderr(), /EADDRINUSE/, 'no EADDRINUSE anywhere');
  });

  t.test(`${transport}: a port already taken reaches the app as its server's 'error'`, async (t) => {
    const blocker = net.createServer().listen(0, '127.0.0.1');
    t.teardown(() => blocker.close());
    await once(blocker, 'listening');
    const { port } = blocker.address() as net.AddressInfo;
    const launcher = await startLauncher(t, [app, '--workers', '2', '--transport', transport], { ADMIN: String(port) });
    const reply = await requestJSON<AppReply>(launcher.port);
    t.match(reply.adminError, { code: 'EADDRINUSE', syscall: 'listen' }, 'EADDRINUSE, as Node raises it');
    t.equal(reply.adminListening, false, 'the server does not listen');
    t.equal(reply.adminAddress, null);
  });
}

t.test("the metrics show each of the app's other ports, and how many workers listen there", async (t) => {
  const metricsPort = await freePort();
  const launcher = await startLauncher(t, [app, '--workers', '2', '--metrics', `127.0.0.1:${metricsPort}`], {
    ADMIN: '0',
  });
  const { port } = (await requestJSON<AppReply>(launcher.port)).adminAddress as net.AddressInfo;
  await requestJSON<AdminReply>(port);
  const address = `127.0.0.1:${port}`;
  const scrape = await waitFor(
    async () => {
      const text = (await request(metricsPort, { path: '/metrics' })).text;
      return text.includes(`socketnaut_listener_workers{address="${address}"} 2`) ? text : undefined;
    },
    { what: 'both workers in the listener gauge' },
  );
  t.match(
    scrape,
    `socketnaut_listener_connections_accepted_total{address="${address}"} 1`,
    'one connection accepted there',
  );
});
