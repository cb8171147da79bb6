import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { fixture, requestJSON } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';

const app = fixture('plain-app.js').pathname;
const recorder = fixture('obs-record-modules.js').href;

/** Runs the launcher with `args`, serves one request, stops it, and returns the modules its main thread resolved. */
async function modulesResolved(t: Test, args: string[]): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socketnaut-modules-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'modules.txt');
  const launcher = await startLauncher(t, ['--workers', '1', ...args, app], {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${recorder}`,
    OBS_MODULES_FILE: file,
  });
  const reply = await requestJSON(launcher.port);
  t.type(reply.threadId, 'number', 'the app served');
  launcher.child.kill('SIGTERM');
  const { code } = await launcher.exited;
  t.equal(code, 0, 'clean exit');
  const modules = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  t.ok(
    modules.some((url) => url.endsWith('/dist/lib/launcher/cli.js')),
    `the recorder saw the launcher itself (${modules.length} modules)`,
  );
  return modules;
}

t.test('without --metrics, prom-client is never loaded', async (t) => {
  const modules = await modulesResolved(t, []);
  t.same(
    modules.filter((url) => url.includes('prom-client')),
    [],
  );
});

t.test('with --metrics, it is', async (t) => {
  const modules = await modulesResolved(t, ['--metrics', '127.0.0.1:0']);
  t.ok(
    modules.some((url) => url.includes('/node_modules/prom-client/')),
    'prom-client was resolved',
  );
});
