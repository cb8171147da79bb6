// --env-file: variables loaded into the launcher's environment before the workers start; later files
// win, the environment wins over every file, and a missing file is a usage error.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { launch } from 'socketnaut';
import { requestJSON } from '../helpers.ts';
import { runLauncher, startLauncher } from '../launcher.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socketnaut-env-file-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string): string => {
  fs.writeFileSync(path.join(dir, name), text);
  return path.join(dir, name);
};
const app = write(
  'app.mjs',
  [
    "import http from 'node:http';",
    "import { threadId } from 'node:worker_threads';",
    'const { A, B, C, QUOTED } = process.env;',
    'http.createServer((req, res) => res.end(JSON.stringify({ A, B, C, QUOTED, threadId }))).listen(process.env.PORT);',
    '',
  ].join('\n'),
);
const first = write(
  'first.env',
  'A=from-first\nB=from-first\nC=from-first\n# a comment\nQUOTED="two words"\nSOCKETNAUT_WORKERS=2\n',
);
const second = write('second.env', 'B=from-second\nC=from-second\n');

t.test('two files: the later wins, a variable already set wins over both, and every worker sees them', async (t) => {
  const launcher = await startLauncher(
    t,
    ['--env-file', first, '--env-file', second, '--balance', 'round-robin', app],
    { C: 'from-environment' },
  );
  t.match(launcher.stdout(), /· 2 workers ·/, "the files' SOCKETNAUT_WORKERS is the launcher's own setting");
  const threads = new Set<number>();
  for (let i = 0; i < 6; i++) {
    const env = await requestJSON<{ A: string; B: string; C: string; QUOTED: string; threadId: number }>(launcher.port);
    t.same(
      { ...env, threadId: undefined },
      { A: 'from-first', B: 'from-second', C: 'from-environment', QUOTED: 'two words', threadId: undefined },
      `worker ${env.threadId}`,
    );
    threads.add(env.threadId);
  }
  t.equal(threads.size, 2, 'both workers answered');
});

t.test('SOCKETNAUT_ENV_FILE: a list of files, as the flag repeated', async (t) => {
  const launcher = await startLauncher(t, ['--workers', '1', app], {
    SOCKETNAUT_ENV_FILE: [first, second].join(path.delimiter),
  });
  const env = await requestJSON<{ B: string }>(launcher.port);
  t.equal(env.B, 'from-second');
});

t.test('a missing file exits 2, naming it', async (t) => {
  const missing = path.join(dir, 'missing.env');
  const result = await runLauncher(['--host', '127.0.0.1', '--port', '0', app], {
    SOCKETNAUT_ENV_FILE: [first, missing].join(path.delimiter),
  });
  t.equal(result.code, 2);
  t.ok(result.stderr.includes(missing), `the message names ${missing}`);
  t.match(result.stderr, /Cannot load the env file .*: no such file/);
  t.notMatch(result.stdout, /socketnaut: http/, 'nothing started');
});

t.test('a missing file given by the flag: a non-zero exit, naming it', async (t) => {
  // Node 22 and 24 look for every --env-file of their command line, even one after the script: a
  // missing file ends the process (code 9) before socketnaut runs.
  const missing = path.join(dir, 'missing.env');
  const result = await runLauncher([
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--env-file',
    first,
    '--env-file',
    missing,
    app,
  ]);
  t.ok(result.code === 2 || result.code === 9, `exit code ${result.code}`);
  t.ok(result.stderr.includes(missing), `the message names ${missing}`);
  t.notMatch(result.stdout, /socketnaut: http/, 'nothing started');
});

t.test('launch() rejects a missing file with its own code, before starting anything', async (t) => {
  const missing = path.join(dir, 'also-missing.env');
  await t.rejects(launch({ app, port: 0, host: '127.0.0.1', envFile: [missing] }), {
    code: 'SOCKETNAUT_ERR_ENV_FILE',
    message: missing,
  });
});
