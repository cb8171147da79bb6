import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { fixture, request, transports, waitFor } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';

// Signals reach only the main thread; the launcher passes them on, so an app's own cleanup runs in
// every worker, at every stop and at every reload, and no request in flight is lost meanwhile.
const app = fixture('signal-listener.js').pathname;

function markerDir(t: Test): { dir: string; markers: (prefix: string) => string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socketnaut-signals-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    markers: (prefix) =>
      fs
        .readdirSync(dir)
        .filter((name) => name.startsWith(`${prefix}-`))
        .sort(),
  };
}

for (const transport of transports) {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    for (const exitInHandler of [false, true]) {
      const how = exitInHandler ? ', whose listener calls process.exit()' : '';
      t.test(
        `${transport}: on ${signal}, each worker's app hears ${signal}${how}; a slow request still gets its 200`,
        async (t) => {
          const { dir, markers } = markerDir(t);
          const env = { MARKER_DIR: dir, EXIT_IN_HANDLER: exitInHandler ? '1' : '0' };
          const launcher = await startLauncher(t, [app, '--workers', '2', '--transport', transport], env);
          const slow = request(launcher.port, { path: '/slow' });
          // The slow request has reached a worker once the worker holds it.
          await waitFor(async () => (await request(launcher.port)).status === 200);
          launcher.child.kill(signal);
          const reply = await slow;
          t.equal(reply.status, 200, 'the request in flight got its answer');
          const { code } = await launcher.exited;
          t.equal(code, 0, 'exit code 0');
          t.equal(markers(signal).length, 2, `one ${signal} marker per worker: ${markers(signal).join(', ')}`);
          t.equal(markers('exit').length, 2, "each worker's 'exit' listeners ran");
          t.same(markers(signal === 'SIGTERM' ? 'SIGINT' : 'SIGTERM'), [], 'no other signal');
        },
      );
    }
  }

  t.test(
    `${transport}: an app that closes its server on SIGTERM closes it first: its callback gets no error`,
    async (t) => {
      const { dir, markers } = markerDir(t);
      const env = { MARKER_DIR: dir, CLOSE_IN_HANDLER: '1' };
      const launcher = await startLauncher(t, [app, '--workers', '2', '--transport', transport], env);
      // One worker holds a request in flight, its keep-alive connection with it; the other holds none.
      const slow = request(launcher.port, { path: '/slow' });
      await waitFor(async () => (await request(launcher.port)).status === 200);
      launcher.child.kill('SIGTERM');
      t.equal((await slow).status, 200, 'the request in flight got its answer');
      t.equal((await launcher.exited).code, 0, 'exit code 0');
      t.equal(markers('closed').length, 2, `each worker's close() called back: ${markers('closed').join(', ')}`);
      t.same(markers('close'), [], 'with no error');
    },
  );

  t.test(`${transport}: at a reload, each retired worker's app hears SIGTERM`, async (t) => {
    const { dir, markers } = markerDir(t);
    const launcher = await startLauncher(t, [app, '--workers', '2', '--transport', transport], { MARKER_DIR: dir });
    launcher.child.kill('SIGHUP');
    await waitFor(() => /reload complete/.test(launcher.stderr()), { what: 'the reload to complete' });
    t.equal(markers('SIGTERM').length, 2, 'one marker per retired worker');
    t.equal((await request(launcher.port)).status, 200, 'the new workers serve');
    launcher.child.kill('SIGTERM');
    t.equal((await launcher.exited).code, 0);
    t.equal(markers('SIGTERM').length, 4, 'and one per new worker at the stop');
  });
}
