import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { createServiceAgent, createServiceProxy, type ServiceAgentOptions } from 'socketnaut';
import { fixture, requestJSON, startProxy, transports } from '../helpers.ts';

interface Attempt {
  threw: boolean;
  name?: string;
  code?: string;
  message?: string;
  isError?: boolean;
}

function thrownBy(fn: () => unknown): (Error & { code?: string }) | undefined {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  return undefined;
}

t.test('outside a worker', async (t) => {
  const server = http.createServer();
  const err = thrownBy(() => createServiceAgent({ server }));
  t.ok(err instanceof Error, 'throws');
  t.equal(err?.code, 'SOCKETNAUT_ERR_NOT_IN_WORKER');
  t.equal(server.listening, false, 'the server was not touched');
  t.equal(server.listen, http.Server.prototype.listen, 'listen() not taken over');
});

t.test('bad options are reported before the worker check', async (t) => {
  const notAServer = thrownBy(() => createServiceAgent({ server: 42 } as unknown as ServiceAgentOptions));
  t.ok(notAServer instanceof TypeError, 'a TypeError');
  t.equal(notAServer?.code, 'SOCKETNAUT_ERR_INVALID_OPTION');
  t.match(notAServer?.message, '"server"');

  const missing = thrownBy(() => createServiceAgent({} as ServiceAgentOptions));
  t.ok(missing instanceof TypeError, 'a TypeError');
  t.equal(missing?.code, 'SOCKETNAUT_ERR_INVALID_OPTION');
  t.match(missing?.message, '"server"');

  const none = thrownBy(() => (createServiceAgent as (o?: unknown) => unknown)());
  t.ok(none instanceof TypeError, 'a TypeError');
  t.equal(none?.code, 'SOCKETNAUT_ERR_INVALID_OPTION');
  t.match(none?.message, '"options"');
});

for (const transport of transports) {
  t.test(`${transport}: a second createServiceAgent() in a worker`, async (t) => {
    const { port } = await startProxy(t, { workerURL: fixture('agent-twice.js'), workerCount: 1, transport });
    const results = await requestJSON<Record<string, Attempt>>(port);

    for (const key of ['sameServer', 'otherServer'] as const) {
      const attempt = results[key]!;
      t.equal(attempt.threw, true, `${key}: throws`);
      t.equal(attempt.isError, true, `${key}: an Error`);
      t.equal(attempt.code, 'SOCKETNAUT_ERR_AGENT_EXISTS', `${key}: code`);
      t.ok(typeof attempt.message === 'string' && attempt.message.length > 0, `${key}: a message`);
    }
    t.equal(results.notAServer!.threw, true, 'server: 42 throws in a worker too');
    t.equal(results.notAServer!.code, 'SOCKETNAUT_ERR_INVALID_OPTION');
    t.match(results.notAServer!.name, /^TypeError/, 'a TypeError');
    t.match(results.notAServer!.message, '"server"');
    t.equal(results.noOptions!.code, 'SOCKETNAUT_ERR_INVALID_OPTION');
    t.match(results.noOptions!.message, '"options"');
  });

  t.test(`${transport}: an uncaught second createServiceAgent() is a bootstrap failure`, async (t) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const proxy = createServiceProxy({
      server,
      workerURL: fixture('agent-twice-throws.js'),
      workerCount: 1,
      transport,
    });
    t.teardown(() => proxy.shutdown({ timeout: 2000 }));
    const [err] = (await once(proxy, 'error')) as [
      Error & { code?: string; cause?: { code?: string; message?: string } },
    ];
    t.equal(err.code, 'SOCKETNAUT_ERR_WORKER_BOOTSTRAP');
    t.match(err.message, 'agent-twice-throws.js');
    t.equal(err.cause?.code, 'SOCKETNAUT_ERR_AGENT_EXISTS', 'the cause keeps the agent error code');
    t.ok(err.cause?.message && err.message.includes(err.cause.message), "the message carries the cause's");
  });
}
