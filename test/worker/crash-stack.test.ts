import t from 'tap';
import { fixture, request, waitFor } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';

// A worker that dies of an uncaught error is logged with the error's stack, as Node prints it for a
// process, once per crash.
const app = fixture('crashes-on-request.js').pathname;

for (const [path, message] of [
  ['/throw', 'thrown on purpose'],
  ['/reject', 'rejected on purpose'],
] as const) {
  t.test(`GET ${path}: the crash is logged with its stack, once`, async (t) => {
    const launcher = await startLauncher(t, [app, '--workers', '1']);
    await request(launcher.port, { path }).catch(() => {});
    const pattern = new RegExp(
      `Error: ${message}\\n\\s+at crashOnPurpose \\(file://.*crashes-on-request\\.js:\\d+:\\d+\\)`,
    );
    await waitFor(() => pattern.test(launcher.stdout() + launcher.stderr()), {
      what: `the stack of "${message}"`,
      timeout: 10_000,
    });
    t.pass('the stack names the function and the line');
    await waitFor(async () => (await request(launcher.port).catch(() => undefined))?.status === 200, {
      what: 'the replacement to serve',
    });
    t.equal(
      (launcher.stdout() + launcher.stderr()).match(new RegExp(`Error: ${message}`, 'g'))?.length,
      1,
      'logged once',
    );
  });
}
