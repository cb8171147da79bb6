import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { consoleHandler, createServiceProxy, Level } from 'socketnaut';
import { fixture, waitFor, withDeadline } from '../helpers.ts';

// A worker that stalls after it serves leaves the ready workers until its loop turns again. When the
// last of minWorkers comes up while another is stalled, 'ready' waits for that one to turn again,
// and is not lost: a launcher waiting for it would never print its start-up line.
consoleHandler.setLevel(Level.ERROR);

t.test("'ready' comes once a worker stalled while the others started turns again", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socketnaut-stall-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const proxy = createServiceProxy({
    server,
    workerURL: fixture('stall-while-others-start.js'),
    workerCount: 2,
    transport: 'pipe',
    workerOptions: { env: { ...process.env, STALL_DIR: dir } },
  });
  t.teardown(() => proxy.shutdown({ timeout: 1000 }));
  const stalled = withDeadline(once(proxy, 'worker-online'), 10_000, 'the first worker serving').then(() =>
    waitFor(() => proxy.agents.some((agent) => agent.status === 'stalled'), {
      timeout: 5000,
      what: 'the first worker taken for stalled',
    }),
  );
  const failed = once(proxy, 'error').then(([err]) => Promise.reject(err as Error));
  await Promise.race([stalled, failed]);
  await withDeadline(Promise.race([once(proxy, 'ready'), failed]), 10_000, "'ready'");
  t.equal(proxy.agents.length, 2, 'both workers serve');
  t.ok(
    proxy.agents.every((agent) => agent.status === 'serving'),
    'neither is stalled any more',
  );
});
