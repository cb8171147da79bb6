import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { fixture, request, transports, waitFor, withDeadline } from '../helpers.ts';

const EXIT_DEADLINE_MS = 10_000;
const FORBIDDEN = ['TCPServerWrap', 'TCPSocketWrap', 'PipeWrap', 'PipeServerWrap', 'Timeout', 'MessagePort', 'Worker'];
// 4 single requests, 1 keep-alive connection carrying 2 requests, 1 request in flight at shutdown.
const CONNECTIONS = 6;

interface Report {
  transport: string;
  shutdown: string[];
  agents: number;
  listening: boolean;
  resources: string[];
}

for (const transport of transports) {
  t.test(`${transport}: after shutdown() the process ends by itself`, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socketnaut-shutdown-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const reportFile = path.join(dir, 'report.json');
    const read = (): Record<string, unknown> | undefined => {
      try {
        return JSON.parse(fs.readFileSync(reportFile, 'utf8')) as Record<string, unknown>;
      } catch {
        return undefined;
      }
    };
    // Regular files, not pipes, for the child's output: a pipe would be a resource of its own.
    const stdout = fs.openSync(path.join(dir, 'stdout'), 'w');
    const stderr = fs.openSync(path.join(dir, 'stderr'), 'w');
    const child = spawn(
      process.execPath,
      [fileURLToPath(fixture('shutdown-child.js')), transport, reportFile, String(CONNECTIONS)],
      {
        stdio: ['ignore', stdout, stderr],
      },
    );
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    fs.closeSync(stdout);
    fs.closeSync(stderr);
    const output = () => ({
      stdout: fs.readFileSync(path.join(dir, 'stdout'), 'utf8'),
      stderr: fs.readFileSync(path.join(dir, 'stderr'), 'utf8'),
    });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;

    const port = await waitFor(
      () => {
        const port = read()?.port;
        return typeof port === 'number' ? port : undefined;
      },
      {
        timeout: EXIT_DEADLINE_MS,
        what: "the port in the child's report",
        failure: () =>
          child.exitCode === null && child.signalCode === null
            ? undefined
            : `the child exited first\n${output().stderr}`,
      },
    );

    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await request(port)).status);

    // Two requests on one keep-alive connection, which is then left idle and open.
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => keepAlive.destroy());
    for (let i = 0; i < 2; i++) {
      const reply = await request(port, { agent: keepAlive });
      statuses.push(reply.status);
    }
    const idleSocket: net.Socket | undefined = Object.values(keepAlive.freeSockets).flat()[0];
    t.ok(idleSocket, 'the keep-alive connection is idle in the agent');
    const idleClosed: Promise<unknown> = idleSocket ? once(idleSocket, 'close') : Promise.resolve();

    // The child shuts down as soon as this one has been handed to a worker.
    const inFlight = request(port, { path: '/slow?ms=300' }).then(
      (reply) => reply.status,
      (err: Error) => err.message,
    );

    const outcome = await withDeadline(exited, EXIT_DEADLINE_MS, 'child exit').catch((err: Error) => err);
    t.notOk(outcome instanceof Error, `the child exits by itself within ${EXIT_DEADLINE_MS} ms`, output());
    if (outcome instanceof Error) return;
    const [code, signal] = outcome;
    t.equal(code, 0, 'exit code 0', { signal, ...output() });

    t.same(statuses, [200, 200, 200, 200, 200, 200], 'requests before shutdown were served');
    t.equal(await inFlight, 200, 'the request in flight at shutdown was served');
    await withDeadline(idleClosed, 2000, 'idle keep-alive close').then(
      () => t.pass('the idle keep-alive connection was closed by the proxy'),
      (err: Error) => t.fail(err.message),
    );

    const report = read() as Report | undefined;
    t.ok(report && 'resources' in report, 'the child wrote its report', output());
    if (!report || !('resources' in report)) return;
    t.equal(report.transport, transport);
    t.same(report.shutdown, ['fulfilled', 'fulfilled'], 'both workers stopped');
    t.equal(report.agents, 0, 'no workers left');
    t.equal(report.listening, false, 'the server is closed');
    t.same(
      report.resources.filter((type) => FORBIDDEN.includes(type)),
      [],
      'once shutdown() resolves, no server, socket, pipe, timer, port or worker keeps the loop alive',
      { resources: report.resources },
    );
  });
}
