// The table of settings in lib/settings.ts is the one source of the launcher's flags, environment
// variables and --help, of the checks of launch() and createServiceProxy(), and of the documentation's
// tables of settings (README.md and docs/Reference).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import { createServiceProxy, launch, type LaunchOptions, type ServiceProxyOptions } from 'socketnaut';
import type { Setting } from '../../lib/settings.ts';

const dist = (file: string): string => new URL(`../../dist/lib/${file}`, import.meta.url).href;
const { settings } = (await import(dist('settings.js'))) as typeof import('../../lib/settings.ts');
const { settingsOf } = (await import(dist('settings/resolve.js'))) as typeof import('../../lib/settings/resolve.ts');
const { checkValue } = (await import(dist('settings/checks.js'))) as typeof import('../../lib/settings/checks.ts');
const { readCommandLine, usage } = (await import(
  dist('settings/command-line.js')
)) as typeof import('../../lib/settings/command-line.ts');
const { launcherTable, mainLauncherTable, proxyTable } = (await import(
  dist('settings/docs-tables.js')
)) as typeof import('../../lib/settings/docs-tables.ts');

const INVALID = 'SOCKETNAUT_ERR_INVALID_OPTION';
const OUT_OF_RANGE = 'SOCKETNAUT_ERR_OPTION_OUT_OF_RANGE';
const USAGE = 'SOCKETNAUT_ERR_USAGE';
const app = new URL('../fixtures/plain-app.js', import.meta.url).pathname;

/** The first table in the section under `heading` of `file` (a path from the repository's root). */
function documentedTable(file: string, heading: string): string | undefined {
  const lines = fs.readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8').split('\n');
  const at = lines.indexOf(heading);
  if (at === -1) return undefined;
  const level = heading.indexOf(' ');
  const next = lines.findIndex((line, i) => i > at && /^#+ /.test(line) && line.indexOf(' ') <= level);
  const section = lines.slice(at + 1, next === -1 ? undefined : next);
  const start = section.findIndex((line) => line.startsWith('|'));
  if (start === -1) return undefined;
  const end = section.findIndex((line, i) => i > start && !line.startsWith('|'));
  return section.slice(start, end === -1 ? undefined : end).join('\n');
}

const tables: [string, string, () => string][] = [
  ['docs/Reference/Launcher.md', '## Options', launcherTable],
  ['docs/Reference/API.md', '## `createServiceProxy(options)` → `ServiceProxy`', proxyTable],
  ['README.md', '## The launcher', mainLauncherTable],
];
for (const [file, heading, render] of tables) {
  t.test(`${file}'s table under "${heading}" is the one the settings table renders`, async (t) => {
    const expected = render();
    const found = documentedTable(file, heading);
    t.ok(found !== undefined, 'the heading is there, with a table in its section');
    if (found !== expected) t.comment(`${file} should have, under "${heading}":\n\n${expected}\n`);
    t.equal(found, expected);
  });
}

t.test('flags, short flags and environment variables are each used once', async (t) => {
  for (const key of ['flag', 'short', 'env'] as const) {
    const used = Object.values(settings).flatMap((entry: { flag?: string; short?: string; env?: string }) =>
      entry[key] === undefined ? [] : [entry[key]],
    );
    t.same(used, [...new Set(used)], `${key}s are unique`);
  }
  for (const [name, entry] of settingsOf('proxy')) {
    if (entry.appliesTo === 'proxy')
      t.notOk(entry.flag ?? entry.env, `${name}, for the proxy only, has no flag or environment variable`);
  }
});

t.test('every default passes its own check', async (t) => {
  for (const [name, entry] of Object.entries<Setting<unknown>>(settings)) {
    if (entry.default !== undefined) t.doesNotThrow(() => checkValue(entry.check, name, entry.default), name);
  }
});

t.test('--help shows every flag, and every environment variable read', async (t) => {
  const help = usage();
  for (const [name, entry] of settingsOf('launcher')) {
    if (entry.flag) t.match(help, `--${entry.flag}`, `${name}: its flag`);
    if (entry.env) t.match(help, `[${entry.env}`, `${name}: its environment variable`);
  }
});

function usageError(values: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string | undefined {
  try {
    readCommandLine(values, env);
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code === USAGE ? (err as Error).message : `not a usage error: ${String(err)}`;
  }
}

t.test('command-line integers are decimal digits only', async (t) => {
  for (const text of ['0x10', '1e3', '1.0', ' 5', '5 ', '+5', '-0', '-1', '', 'Infinity']) {
    t.equal(usageError({ workers: text }), `--workers must be an integer >= 1, not '${text}'`, `--workers '${text}'`);
    t.equal(
      usageError({ 'min-workers': text }),
      `--min-workers must be an integer >= 0, not '${text}'`,
      `--min-workers '${text}'`,
    );
  }
  t.equal(
    usageError({}, { SOCKETNAUT_WORKERS: '0x10' }),
    "SOCKETNAUT_WORKERS must be an integer >= 1, not '0x10'",
    'the environment variable is named',
  );
  t.equal(usageError({ port: '65536' }), "--port must be an integer from 0 to 65535, not '65536'");
  t.same(readCommandLine({ workers: '16', 'min-workers': '0', port: '08080' }, {}), {
    port: 8080,
    workers: 16,
    minWorkers: 0,
  });
});

t.test('flags win over the environment, and an empty environment variable counts as unset', async (t) => {
  t.same(readCommandLine({ workers: '2' }, { SOCKETNAUT_WORKERS: '3', SOCKETNAUT_TRANSPORT: 'pipe', PORT: '' }), {
    workers: 2,
    transport: 'pipe',
  });
  t.same(readCommandLine({}, { SOCKETNAUT_PROXY_PROTOCOL: '1', SOCKETNAUT_PROXY_PROTOCOL_FROM: '10.0.0.0/8, ::1' }), {
    proxyProtocol: true,
    proxyProtocolFrom: ['10.0.0.0/8', '::1'],
  });
  t.equal(usageError({}, { SOCKETNAUT_PROXY_PROTOCOL: 'yes' }), "SOCKETNAUT_PROXY_PROTOCOL must be 1 or 0, not 'yes'");
  t.equal(
    usageError({ 'proxy-protocol-from': '10.0.0.0/8,10.0.0.0/33' }),
    "--proxy-protocol-from must be comma-separated addresses or CIDR subnets, like '10.0.0.0/8,::1', not '10.0.0.0/8,10.0.0.0/33'",
  );
});

t.test('repeatable flags add up, and their environment variable is a list', async (t) => {
  const [a, b, c] = ['a.env', 'b.env', 'c.env'];
  t.same(readCommandLine({ 'env-file': [a, `${b}${path.delimiter}${c}`] }, {}), { envFile: [a, b, c] });
  t.same(readCommandLine({}, { SOCKETNAUT_WATCH_PATH: `src${path.delimiter}lib`, SOCKETNAUT_WATCH: '1' }), {
    watch: true,
    watchPath: ['src', 'lib'],
  });
  t.same(
    readCommandLine({ 'watch-path': ['src'] }, { SOCKETNAUT_WATCH_PATH: 'lib' }),
    { watchPath: ['src'] },
    'the flag wins over the environment',
  );
  t.equal(
    usageError({ 'watch-path': [''] }),
    `--watch-path must be paths of directories, separated by '${path.delimiter}', not ''`,
  );
  t.same(
    readCommandLine({ watch: true, 'env-file': [a] }, {}, ['envFile']),
    { envFile: [a] },
    'only the settings asked for',
  );
});

t.test('--status-interval is a number of seconds that a timer can hold', async (t) => {
  for (const text of ['0', '1e3', '0x10', '2147484', '2147483.5'])
    t.ok(usageError({ 'status-interval': text }), `'${text}' refused`);
  t.equal(usageError({ 'status-interval': '2147484' }), "--status-interval must be a number <= 2147483, not '2147484'");
  t.same(readCommandLine({ 'status-interval': '0.5' }, {}), { statusInterval: 0.5 });
  t.same(readCommandLine({ 'status-interval': '2147483' }, {}), { statusInterval: 2147483 });
});

t.test('launch() checks every option it takes, before it starts anything', async (t) => {
  for (const [name] of settingsOf('launcher')) {
    await t.rejects(
      launch({ app, [name]: Symbol('bad') } as unknown as LaunchOptions),
      { code: INVALID, message: `"${name}"` },
      name,
    );
  }
  const outOfRange: [Partial<LaunchOptions>, string][] = [
    [{ statusInterval: 2147484 }, 'statusInterval'],
    [{ statusInterval: 0 }, 'statusInterval'],
    [{ shutdownTimeout: 2 ** 31 }, 'shutdownTimeout'],
    [{ headersTimeout: 0 }, 'headersTimeout'],
    [{ port: 1.5 }, 'port'],
    [{ metrics: { port: 70000 } }, 'metrics.port'],
    [{ minWorkers: 3, maxWorkers: 2 }, 'maxWorkers'],
  ];
  for (const [options, name] of outOfRange) {
    await t.rejects(launch({ app, ...options }), { code: OUT_OF_RANGE, message: `"${name}"` }, JSON.stringify(options));
  }
  await t.rejects(launch({ app, tlsKey: 'key' }), { code: INVALID, message: '"tlsCert"' }, 'tlsKey without tlsCert');
  await t.rejects(launch({ app, proxyProtocolFrom: ['10.0.0.1', 'nowhere'] }), {
    code: INVALID,
    message: '"proxyProtocolFrom[1]"',
  });
});

t.test('createServiceProxy() checks every option it takes', async (t) => {
  const valid = (): ServiceProxyOptions => ({
    server: net.createServer(),
    workerURL: new URL('../fixtures/plain-app.js', import.meta.url),
  });
  for (const [name] of settingsOf('proxy')) {
    t.throws(
      () => createServiceProxy({ ...valid(), [name]: Symbol('bad') }),
      { code: INVALID, message: `"${name}"` },
      name,
    );
  }
  t.throws(() => createServiceProxy({ ...valid(), queueTimeout: 2 ** 31 }), {
    code: OUT_OF_RANGE,
    message: '"queueTimeout"',
  });
  t.throws(() => createServiceProxy({ ...valid(), serverDefaults: { requestTimeout: -1 } }), {
    code: OUT_OF_RANGE,
    message: '"serverDefaults.requestTimeout"',
  });
});
