import http from 'node:http';
import t from 'tap';
import type { ProxyStats, WorkerStats } from 'socketnaut';
import { humanLine, jsonLine } from '../../dist/lib/main/status.js';
import { fixture, waitFor } from '../helpers.ts';
import { runLauncher, startLauncher, type RunningLauncher } from '../launcher.ts';

const app = fixture('plain-app.js').pathname;

interface StatusLine {
  time: string;
  workers: {
    slot: number;
    threadId: number;
    state: string;
    connections: number;
    eventLoopUtilization: number;
    restarts: number;
  }[];
  connections: number;
  queued: number;
  accepted: number;
  refused: number;
  restarts: number;
}

/** Every complete stdout line but the start-up line, parsed as JSON (throws on a line that is not). */
function statusLines(launcher: RunningLauncher): StatusLine[] {
  return launcher
    .stdout()
    .split('\n')
    .slice(0, -1)
    .filter((line) => !line.startsWith('socketnaut: '))
    .map((line) => JSON.parse(line) as StatusLine);
}

t.test('--status-interval prints one JSON object a line when stdout is not a terminal', async (t) => {
  const launcher = await startLauncher(t, ['--workers', '2', '--status-interval', '0.2', app]);
  await waitFor(() => statusLines(launcher).length >= 3, 5000);
  const lines = statusLines(launcher);
  t.ok(lines.length >= 3, `${lines.length} lines`);
  for (const line of lines) {
    t.ok(Number.isFinite(Date.parse(line.time)), `time ${line.time} is a date`);
    t.equal(line.workers.length, 2, 'both workers');
    t.same(line.workers.map((w) => w.slot).sort(), [0, 1], 'slots 0 and 1');
    for (const w of line.workers) {
      t.type(w.connections, 'number');
      t.type(w.threadId, 'number');
      t.ok(
        w.eventLoopUtilization >= 0 && w.eventLoopUtilization <= 1,
        `eventLoopUtilization ${w.eventLoopUtilization} within [0, 1]`,
      );
    }
    t.equal(line.connections, 0, 'no connection yet');
    t.equal(line.queued, 0, 'nothing queued');
    t.equal(line.accepted, 0, 'nothing accepted');
  }
  const times = lines.map((line) => Date.parse(line.time));
  t.ok(
    times.every((time, i) => i === 0 || time > times[i - 1]!),
    'lines come in time order',
  );

  // The stream route sends its headers at once and its body 1 s later: the request is in the app meanwhile.
  const printed = statusLines(launcher).length;
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: launcher.port, path: '/stream?ms=1000', agent: false }, resolve);
    req.on('error', reject);
    t.teardown(() => req.destroy());
  });
  const res = await response;
  t.equal(res.statusCode, 200);
  await waitFor(
    () =>
      statusLines(launcher)
        .slice(printed)
        .some((line) => line.connections >= 1),
    3000,
  );
  const busy = statusLines(launcher)
    .slice(printed)
    .find((line) => line.connections >= 1)!;
  t.equal(busy.connections, 1, 'the slow request is counted while in flight');
  t.equal(
    busy.workers.reduce((sum, w) => sum + w.connections, 0),
    1,
    'on one worker',
  );
  t.equal(busy.accepted, 1, 'the one request accepted');
  res.resume();
  await new Promise((resolve) => res.on('end', resolve));
  const done = statusLines(launcher).length;
  await waitFor(
    () =>
      statusLines(launcher)
        .slice(done)
        .some((line) => line.connections === 0),
    3000,
  );
  t.pass('back to no connection once the response ended');
});

const badIntervals = ['0', '-1', 'abc', '', 'Infinity'];
for (const value of badIntervals) {
  t.test(`--status-interval '${value}' is a usage error`, async (t) => {
    const result = await runLauncher(['--port', '0', '--host', '127.0.0.1', `--status-interval=${value}`, app]);
    t.equal(result.code, 2);
    t.match(result.stderr, `--status-interval must be a number > 0, not '${value}'`);
  });
}

function sampleStats(): ProxyStats {
  const worker = (slot: number, connections: number, eventLoopUtilization: number, state = 'ready'): WorkerStats => ({
    slot,
    threadId: 10 + slot,
    state,
    status: 'serving',
    heartbeatAgeMs: 20,
    connections,
    totalConnections: 100 + slot,
    eventLoopUtilization,
    heapUsed: 1_000_000,
    uptimeMs: 5000,
    restarts: slot === 1 ? 2 : 0,
  });
  return {
    transport: 'handoff',
    listeners: [],
    accepted: 300,
    dispatched: 301,
    redispatched: 1,
    forwarded: 0,
    refused: 4,
    queued: 5,
    expired: 0,
    acceptErrors: 0,
    proxyHeaderRejected: 0,
    queuedNow: 3,
    connections: 7,
    restarts: 2,
    reloads: 1,
    stalls: 0,
    stallRestarts: 0,
    memoryRestarts: 0,
    memoryOverLimit: 0,
    workers: [worker(0, 3, 0.25), worker(1, 4, 0.123456789), worker(2, 0, 0.996)],
  };
}

t.test('humanLine: one readable line with every slot and its event-loop use', async (t) => {
  const line = humanLine(sampleStats());
  t.match(line, /\n$/, 'ends the line');
  t.equal(line.split('\n').length, 2, 'a single line');
  t.match(line, /^socketnaut \d\d:\d\d:\d\d /, 'starts with the time of day');
  t.match(line, /3 workers, 7 conn, 3 queued/);
  t.match(line, /#0 3 conn 25%/);
  t.match(line, /#1 4 conn 12%/, 'rounded to a whole percent');
  t.match(line, /#2 0 conn 100%/);
  t.ok(line.indexOf('#0') < line.indexOf('#1') && line.indexOf('#1') < line.indexOf('#2'), 'in slot order');

  const exited = sampleStats();
  exited.workers[2]!.state = 'exited';
  t.notMatch(humanLine(exited), /#2/, 'an exited worker is not listed');

  const stalled = sampleStats();
  stalled.workers[1]!.status = 'stalled';
  t.match(humanLine(stalled), /#1 4 conn 12% stalled · #2 0 conn 100%/, 'a worker not serving says what it is doing');
});

t.test('jsonLine: one JSON object with the workers, counters and a timestamp', async (t) => {
  const stats = sampleStats();
  const line = jsonLine(stats);
  t.match(line, /^\{.*\}\n$/, 'one line');
  const parsed = JSON.parse(line) as StatusLine;
  t.ok(Math.abs(Date.parse(parsed.time) - Date.now()) < 60_000, 'time is now, in ISO form');
  t.same(parsed.workers, [
    {
      slot: 0,
      threadId: 10,
      state: 'ready',
      status: 'serving',
      connections: 3,
      eventLoopUtilization: 0.25,
      restarts: 0,
    },
    {
      slot: 1,
      threadId: 11,
      state: 'ready',
      status: 'serving',
      connections: 4,
      eventLoopUtilization: 0.1235,
      restarts: 2,
    },
    {
      slot: 2,
      threadId: 12,
      state: 'ready',
      status: 'serving',
      connections: 0,
      eventLoopUtilization: 0.996,
      restarts: 0,
    },
  ]);
  t.equal(parsed.connections, 7);
  t.equal(parsed.queued, 3, 'queued is the number waiting now, not the running total');
  t.equal(parsed.accepted, 300);
  t.equal(parsed.refused, 4);
  t.equal(parsed.restarts, 2);
});
