import net from 'node:net';
import { once } from 'node:events';
import fs from 'node:fs';
import t from 'tap';
import { fixture } from '../helpers.ts';
import { runLauncher } from '../launcher.ts';

const app = fixture('plain-app.js').pathname;

t.test('a missing app module is named, and the exit is non-zero', async (t) => {
  const result = await runLauncher(['--port', '0', '/nonexistent/app.js']);
  t.equal(result.code, 1);
  t.match(result.stderr, /Cannot find the app module \/nonexistent\/app\.js/);
});

// With no --host the public port is bound only once the app listens: nothing else holds the launcher.
for (const where of [['--host', '127.0.0.1'], []]) {
  const bound = where.length ? 'bound at once' : 'bound where the app asks';
  t.test(`an app that throws while loading (${bound}): its own error and stack, then exit 1`, async (t) => {
    const result = await runLauncher(['--port', '0', ...where, '--workers', '2', fixture('app-throws.js').pathname]);
    t.equal(result.code, 1, 'exit code 1', { stderr: result.stderr });
    t.match(result.stderr, /The app failed to start 3 times: app failed to load on purpose/);
    t.match(result.stderr, /Error: app failed to load on purpose\n\s+at /, 'the stack is shown');
    t.equal(result.stderr.match(/socketnaut: The app failed/g)?.length, 1, 'reported once');
  });
}

t.test('a port already in use is reported, with a non-zero exit', async (t) => {
  const blocker = net.createServer().listen(0, '127.0.0.1');
  t.teardown(() => blocker.close());
  await once(blocker, 'listening');
  const { port } = blocker.address() as net.AddressInfo;
  const result = await runLauncher(['--port', String(port), '--host', '127.0.0.1', app]);
  t.equal(result.code, 1);
  t.match(result.stderr, new RegExp(`127\\.0\\.0\\.1:${port} is already in use`));
});

t.test('unknown flags print the usage text and exit 2', async (t) => {
  const result = await runLauncher(['--frobnicate', app]);
  t.equal(result.code, 2);
  t.match(result.stderr, /Unknown option '--frobnicate'/);
  t.match(result.stderr, /Usage: socketnaut \[options\] <app-module>/);
});

const badValues: [string[], RegExp][] = [
  [['--workers', '0'], /--workers must be an integer >= 1, not '0'/],
  [['--workers', 'many'], /--workers must be an integer >= 1, not 'many'/],
  [['--port=70000'], /--port must be an integer from 0 to 65535/],
  [['--transport', 'carrier-pigeon'], /--transport must be one of auto, handoff, pipe/],
  [['--balance', 'random'], /--balance must be one of least-connections, round-robin, ip-hash/],
  [['--log-level', 'chatty'], /--log-level must be one of/],
  [['--tls-key', '/nonexistent.pem', '--tls-cert', '/nonexistent.pem'], /--tls-key: cannot read \/nonexistent\.pem/],
  [[], /Expected exactly one <app-module>/],
];
for (const [args, message] of badValues) {
  t.test(`bad value: ${args.join(' ') || '(no app)'}`, async (t) => {
    const result = await runLauncher(args.length === 0 ? [] : [...args, app]);
    t.equal(result.code, 2);
    t.match(result.stderr, message);
  });
}

t.test('--help and --version', async (t) => {
  const help = await runLauncher(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: socketnaut/);
  const version = await runLauncher(['--version']);
  t.equal(version.code, 0);
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  t.equal(version.stdout.trim(), pkg.version);
});
