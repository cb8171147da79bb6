import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createServiceProxy } from 'socketnaut';
import { fixture, waitFor } from '../helpers.ts';

// shutdown() called before the transport has opened leaves nothing behind: the pipe transport's
// directory of sockets, made as it opens, is removed once it has.

t.test('shutdown() in the same tick as createServiceProxy() leaves no pipe directory', async (t) => {
  // A temporary directory of this test's own, so that no other process's directories count.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shutdown-before-open-'));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  t.teardown(() => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
  });
  t.equal(os.tmpdir(), tmp, 'the transport makes its directory here');

  const server = net.createServer();
  t.teardown(() => server.close());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const proxy = createServiceProxy({ server, workerURL: fixture('http-server.js'), workerCount: 1, transport: 'pipe' });
  const opening = fs.readdirSync(tmp).filter((name) => name.startsWith('socketnaut-'));
  const stopped = proxy.shutdown({ timeout: 1000 });
  t.equal(opening.length, 1, 'the pipe transport began opening, with its directory');

  t.same(await stopped, [], 'no worker was started');
  await waitFor(() => fs.readdirSync(tmp).length === 0, {
    timeout: 2000,
    what: () => `the pipe directory removed (left: ${fs.readdirSync(tmp).join(', ')})`,
  });
  t.pass('no directory is left');
  t.equal(proxy.transport, undefined, 'no transport was put to use');
});
