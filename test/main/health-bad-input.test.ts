import net from 'node:net';
import t from 'tap';
import { createServiceProxy, launch, type LaunchOptions, type ServiceProxyOptions } from 'socketnaut';
import { fixture } from '../helpers.ts';
import { runLauncher } from '../launcher.ts';

// --stall-timeout, --max-memory-restart and --health are checked as every setting is: a bad value on
// the command line or in the environment is a usage error naming it (exit 2); in code, a coded error.
const app = fixture('health-app.js').pathname;
const STALL = /must be 0 or an integer from 1000 to 2147483647/;
const MEMORY = /must be an integer from 1 to 1048576/;

const badFlags: [string[], RegExp][] = [
  [['--stall-timeout=-1'], new RegExp(`--stall-timeout ${STALL.source}, not '-1'`)],
  // Without '=', a value that starts with a dash reads as an option: still a usage error naming the flag.
  [['--stall-timeout', '-1'], /Option '--stall-timeout' argument is ambiguous/],
  [['--stall-timeout', 'abc'], new RegExp(`--stall-timeout ${STALL.source}, not 'abc'`)],
  [['--stall-timeout', '500'], new RegExp(`--stall-timeout ${STALL.source}, not '500'`)],
  [['--stall-timeout', '999'], new RegExp(`--stall-timeout ${STALL.source}, not '999'`)],
  [['--stall-timeout', '1.5e3'], new RegExp(`--stall-timeout ${STALL.source}, not '1\\.5e3'`)],
  [['--stall-timeout', '2147483648'], new RegExp(`--stall-timeout ${STALL.source}, not '2147483648'`)],
  [['--stall-timeout='], new RegExp(`--stall-timeout ${STALL.source}, not ''`)],
  [['--max-memory-restart', '0'], new RegExp(`--max-memory-restart ${MEMORY.source}, not '0'`)],
  [['--max-memory-restart=-5'], new RegExp(`--max-memory-restart ${MEMORY.source}, not '-5'`)],
  [['--max-memory-restart', '512M'], new RegExp(`--max-memory-restart ${MEMORY.source}, not '512M'`)],
  [['--max-memory-restart', '1.5'], new RegExp(`--max-memory-restart ${MEMORY.source}, not '1\\.5'`)],
  [['--max-memory-restart', '1048577'], new RegExp(`--max-memory-restart ${MEMORY.source}, not '1048577'`)],
  [['--health', 'abc'], /--health must be \[host:\]port, not 'abc'/],
  [['--health', '70000'], /--health must be \[host:\]port, not '70000'/],
];
for (const [args, message] of badFlags) {
  t.test(`${args.join(' ')}: exit 2, naming the flag`, async (t) => {
    const result = await runLauncher(['--port', '0', '--host', '127.0.0.1', ...args, app]);
    t.equal(result.code, 2);
    t.match(result.stderr, message);
    t.match(result.stderr, /Usage: socketnaut/, 'with the usage');
    t.equal(result.stdout, '', 'nothing started');
  });
}

const badEnv: [NodeJS.ProcessEnv, RegExp][] = [
  [{ SOCKETNAUT_STALL_TIMEOUT: '100' }, new RegExp(`SOCKETNAUT_STALL_TIMEOUT ${STALL.source}, not '100'`)],
  [{ SOCKETNAUT_MAX_MEMORY_RESTART: 'lots' }, new RegExp(`SOCKETNAUT_MAX_MEMORY_RESTART ${MEMORY.source}, not 'lots'`)],
  [{ SOCKETNAUT_HEALTH: 'here' }, /SOCKETNAUT_HEALTH must be \[host:\]port, not 'here'/],
];
for (const [env, message] of badEnv) {
  t.test(`${Object.keys(env)[0]}=${Object.values(env)[0]}: exit 2, naming the variable`, async (t) => {
    const result = await runLauncher(['--port', '0', '--host', '127.0.0.1', app], env);
    t.equal(result.code, 2);
    t.match(result.stderr, message);
  });
}

const OUT_OF_RANGE = { name: /RangeError/, code: 'SOCKETNAUT_ERR_OPTION_OUT_OF_RANGE' };
const INVALID = { name: /TypeError/, code: 'SOCKETNAUT_ERR_INVALID_OPTION' };
const badOptions: [Partial<ServiceProxyOptions>, string, typeof OUT_OF_RANGE][] = [
  [{ stallTimeout: -1 }, 'stallTimeout', OUT_OF_RANGE],
  [{ stallTimeout: 999 }, 'stallTimeout', OUT_OF_RANGE],
  [{ stallTimeout: 1500.5 }, 'stallTimeout', OUT_OF_RANGE],
  [{ stallTimeout: 2 ** 31 }, 'stallTimeout', OUT_OF_RANGE],
  [{ stallTimeout: Infinity }, 'stallTimeout', OUT_OF_RANGE],
  [{ stallTimeout: '2000' as unknown as number }, 'stallTimeout', INVALID],
  [{ stallTimeout: NaN }, 'stallTimeout', INVALID],
  [{ maxMemoryRestart: 0 }, 'maxMemoryRestart', OUT_OF_RANGE],
  [{ maxMemoryRestart: -100 }, 'maxMemoryRestart', OUT_OF_RANGE],
  [{ maxMemoryRestart: 0.5 }, 'maxMemoryRestart', OUT_OF_RANGE],
  [{ maxMemoryRestart: 2 ** 40 }, 'maxMemoryRestart', OUT_OF_RANGE],
  [{ maxMemoryRestart: '512M' as unknown as number }, 'maxMemoryRestart', INVALID],
  [{ shutdownTimeout: -1 }, 'shutdownTimeout', OUT_OF_RANGE],
];

t.test('createServiceProxy(): a coded error naming the option, before anything starts', async (t) => {
  for (const [options, name, error] of badOptions) {
    const server = net.createServer();
    t.throws(
      () => createServiceProxy({ server, workerURL: fixture('health-app.js'), ...options }),
      { ...error, message: `"${name}"` },
      JSON.stringify(options) ?? String(options),
    );
  }
});

t.test('launch(): rejects with a coded error naming the option, before anything starts', async (t) => {
  for (const [options, name, error] of badOptions) {
    await t.rejects(
      launch({ app, port: 0, ...options } as LaunchOptions),
      { ...error, message: `"${name}"` },
      `${name}: ${String(Object.values(options)[0])}`,
    );
  }
  await t.rejects(launch({ app, port: 0, health: { port: 70000 } }), { ...OUT_OF_RANGE, message: '"health.port"' });
  await t.rejects(launch({ app, port: 0, health: 9000 as unknown as { port: number } }), {
    ...INVALID,
    message: '"health"',
  });
});

t.test('the bounds themselves are accepted: stallTimeout 0 and 1000, maxMemoryRestart 1', async (t) => {
  for (const options of [
    { stallTimeout: 0 },
    { stallTimeout: 1000 },
    { stallTimeout: 2 ** 31 - 1 },
    { maxMemoryRestart: 1 },
    { maxMemoryRestart: 1_048_576 },
  ]) {
    const server = net.createServer();
    const proxy = createServiceProxy({
      server,
      workerURL: fixture('health-app.js'),
      minWorkers: 0,
      maxWorkers: 1,
      ...options,
    });
    t.ok(proxy, JSON.stringify(options));
    await proxy.shutdown({ timeout: 0 });
  }
});
