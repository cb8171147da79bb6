import { once } from 'node:events';
import net from 'node:net';
import { threadId } from 'node:worker_threads';
import stream from 'node:stream';
import t, { type Test } from 'tap';
import { Node, type LogContext, type SyslogLevelT } from 'streams-logger';
import { consoleHandler, createServiceProxy, formatter, Level, logger } from 'socketnaut';
import { fixture, requestJSON, startProxy, transports, waitFor } from '../helpers.ts';
import { skipUnlessSupported } from '../transport-support.ts';

type LogRecord = LogContext<string, SyslogLevelT>;

// The records under test are looked at in the graph; the console need not show them.
const previousLevel = consoleHandler.level;
consoleHandler.setLevel(process.env.SOCKETNAUT_TEST_LOG === 'debug' ? Level.DEBUG : Level.ERROR);
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
  t.teardown(() => {
    logger.disconnect(capture);
  });
  return records;
}

t.test('the logging graph is exported', async (t) => {
  t.equal(typeof logger.connect, 'function', 'logger is a graph node');
  t.equal(typeof formatter.connect, 'function', 'formatter is a graph node');
  t.equal(typeof consoleHandler.setLevel, 'function', 'consoleHandler has a level');
  t.ok(Level.ERROR < Level.WARN && Level.WARN < Level.INFO && Level.INFO < Level.DEBUG, 'Level orders severity');
});

t.test("proxy.log.setLevel(Level.DEBUG) lets the proxy's debug records through", async (t) => {
  const records = captureRecords(t);
  const debugFromProxy = (): LogRecord[] => records.filter((r) => r.name === 'ServiceProxy' && r.level === 'DEBUG');

  // At the default level the proxy logs at INFO and above only.
  const quiet = await startProxy(t, { workerURL: fixture('http-server.js'), workerCount: 1 });
  await requestJSON(quiet.port);
  await waitFor(() => records.some((r) => r.name === 'ServiceProxy' && r.level === 'INFO'), 2000);
  t.equal(quiet.proxy.log.level, Level.INFO, 'INFO by default');
  t.same(debugFromProxy(), [], 'no debug records at the default level');
  await quiet.proxy.shutdown({ timeout: 2000 });

  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const proxy = createServiceProxy({ server, workerURL: fixture('http-server.js'), workerCount: 1 });
  t.teardown(() => proxy.shutdown({ timeout: 2000 }));
  proxy.log.setLevel(Level.DEBUG);
  await once(proxy, 'ready');
  const threadId = proxy.agents[0]!.threadId;
  await waitFor(() => debugFromProxy().length > 0, 2000).catch(() => {});
  t.ok(
    debugFromProxy().some((r) => r.message.includes(`Worker ${threadId} is serving`)),
    'the debug record of the worker coming online reached the root logger',
    { debug: debugFromProxy().map((r) => r.message) },
  );
});

for (const transport of transports) {
  t.test(`${transport}: records a worker logs with agent.log reach the main thread's graph`, async (t) => {
    const records = captureRecords(t);
    const { port } = await startProxy(t, { workerURL: fixture('http-logs.js'), workerCount: 2, transport });
    const marker = `distinctive-${transport}-${process.pid}-${Date.now()}`;
    const threads = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const { threadId } = await requestJSON<{ threadId: number }>(port, { path: `/log?marker=${marker}` });
      threads.add(threadId);
    }
    const fromWorkers = (): LogRecord[] => records.filter((r) => r.message.includes(marker));
    await waitFor(() => fromWorkers().length >= 4, 5000).catch(() => {});
    const got = fromWorkers();
    t.equal(got.length, 4, 'one record per request');
    t.ok(
      got.every((r) => r.level === 'WARN'),
      'at WARN',
    );
    t.ok(
      got.every((r) => r.name === 'ServiceAgent'),
      "from the agent's logger",
    );
    t.same(new Set(got.map((r) => r.threadid)), threads, 'each tagged with the thread that logged it');
    t.same(
      new Set(got.map((r) => r.message.replace(/.* from thread /, ''))),
      new Set([...threads].map(String)),
      'and the message is intact',
    );
  });
}

t.test(
  "handoff: at DEBUG, the agent's own records reach the main thread's graph from an app that never logs",
  { skip: skipUnlessSupported('handoff') },
  async (t) => {
    const records = captureRecords(t);
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    // plain-app.js does not import socketnaut, so the worker loads its logger only to write this record.
    const proxy = createServiceProxy({
      server,
      workerURL: fixture('plain-app.js'),
      workerCount: 1,
      transport: 'handoff',
      proxyProtocol: true,
    });
    t.teardown(() => proxy.shutdown({ timeout: 2000 }));
    proxy.log.setLevel(Level.DEBUG);
    await once(proxy, 'ready');

    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    client.on('error', () => {});
    client.end('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    await once(client, 'close');
    const rejections = (): LogRecord[] =>
      records.filter((r) => r.name === 'ServiceAgent' && r.message.includes('Rejected a connection'));
    await waitFor(() => rejections().length > 0, 3000).catch(() => {});
    t.equal(rejections().length, 1, 'the rejection of a connection without a PROXY header was logged once');
    t.equal(rejections()[0]?.level, 'DEBUG', 'at DEBUG');
    t.not(rejections()[0]?.threadid, threadId, 'by the worker');
  },
);
