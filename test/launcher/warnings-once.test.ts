import t from 'tap';
import { fixture, waitFor } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';

const count = (text: string, part: string): number => text.split(part).length - 1;

t.test("each of the app's warnings is printed once, with its workers' count, and not again at a reload", async (t) => {
  const launcher = await startLauncher(t, ['--workers', '2', fixture('warns-on-load.js').pathname]);
  await waitFor(() => launcher.stderr().includes('AppWarning'), 5_000);
  launcher.child.kill('SIGHUP');
  await waitFor(() => launcher.stderr().includes('reload complete'), 15_000);
  launcher.child.kill('SIGTERM');
  t.equal((await launcher.exited).code, 0);
  const stderr = launcher.stderr();
  t.equal(count(stderr, 'frobnicate() is deprecated'), 1, 'the deprecation is printed once');
  t.match(
    stderr,
    `(node:${launcher.child.pid}) [DEP_APP1] DeprecationWarning: frobnicate() is deprecated, use twiddle() (from 2 workers)`,
  );
  t.equal(count(stderr, 'AppWarning: the cache is disabled (from 2 workers)'), 1, 'the other warning is printed once');
  t.equal(count(stderr, 'to show where the warning was created'), 1, "Node's hint is printed once");
});

t.test('with --trace-warnings, every warning is printed where it was emitted, with its stack', async (t) => {
  const launcher = await startLauncher(t, ['--workers', '2', fixture('warns-on-load.js').pathname], {
    NODE_OPTIONS: '--trace-warnings',
  });
  await waitFor(() => count(launcher.stderr(), 'AppWarning') === 2, 5_000);
  t.match(launcher.stderr(), /AppWarning: the cache is disabled\n\s+at /, 'with its stack');
});
