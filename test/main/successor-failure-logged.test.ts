import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import stream from 'node:stream';
import t, { type Test } from 'tap';
import { Node, type LogContext, type SyslogLevelT } from 'streams-logger';
import { consoleHandler, Level, logger } from 'socketnaut';
import { fixture, startProxy, waitFor } from '../helpers.ts';

type LogRecord = LogContext<string, SyslogLevelT>;

// A successor started for a stalled worker (or one over its memory limit) that fails to load is
// logged as a warning: no reload() rejects to tell of it.

// The records under test are looked at in the graph; the console need not show them.
const previousLevel = consoleHandler.level;
consoleHandler.setLevel(process.env.SOCKETNAUT_TEST_LOG === 'debug' ? Level.DEBUG : Level.CRIT);
t.teardown(() => consoleHandler.setLevel(previousLevel));

/** Every record that reaches socketnaut's root logger from now until the test ends. */
function captureRecords(t: Test): LogRecord[] {
  const records: LogRecord[] = [];
  const capture = new Node<LogRecord, never>(
    new stream.Writable({
      objectMode: true,
      write(record: LogRecord, _encoding, callback) {
        records.push(record);
        callback();
      },
    }),
  );
  logger.connect(capture);
  t.teardown(() => logger.disconnect(capture));
  return records;
}

t.test("a stalled worker's successor that fails to load is logged as a warning", async (t) => {
  const records = captureRecords(t);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'successor-failure-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // health-app.js fails to load in a worker started while this file exists.
  const failStart = path.join(dir, 'fail-start');
  const { proxy, port } = await startProxy(t, {
    workerURL: fixture('health-app.js'),
    workerCount: 1,
    stallTimeout: 1000,
    workerOptions: { env: { ...process.env, HEALTH_FAIL_START_FILE: failStart } },
  });
  // Workers started from now on fail to load; the proxy reports that of the pool's own restarts.
  proxy.on('error', () => {});
  fs.writeFileSync(failStart, '');
  const [stalled] = proxy.agents;
  const hang = http.get({ host: '127.0.0.1', port, path: '/hang', agent: false });
  hang.on('error', () => {});
  t.teardown(() => hang.destroy());

  const exitOf = (record: LogRecord): boolean =>
    record.name === 'ServiceProxy' && /exited \(code \d+\): failed to load/.test(String(record.message));
  const found = await waitFor(() => records.find(exitOf), {
    timeout: 6000,
    what: () =>
      `the successor's exit logged (ServiceProxy: ${records
        .filter((record) => record.name === 'ServiceProxy')
        .map((record) => `${record.level} ${String(record.message)}`)
        .join(' | ')})`,
  });
  t.equal(found.level, 'WARN', 'at WARN');
  t.match(String(found.message), /health-app: told to fail at start-up/, 'with the error it threw');
  t.notMatch(
    String(found.message),
    new RegExp(`Worker ${stalled!.threadId} `),
    'of the successor, not the stalled worker',
  );
  t.ok(
    records.some(
      (record) =>
        record.name === 'ServiceProxy' &&
        /stalled for \d+ ms \(stallTimeout\); starting its successor/.test(String(record.message)),
    ),
    'after the stalled worker was given a successor',
  );
});
