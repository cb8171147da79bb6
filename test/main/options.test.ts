import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import t from 'tap';
import { createServiceProxy, type ServiceProxy, type ServiceProxyOptions } from 'socketnaut';
import { fixture, tlsFiles } from '../helpers.ts';
import { skipUnlessSupported } from '../transport-support.ts';

interface Case {
  title: string;
  options: (server: net.Server) => unknown;
  Class: typeof TypeError | typeof RangeError;
  code: string;
  option: string;
  tls?: boolean;
}

const INVALID = 'SOCKETNAUT_ERR_INVALID_OPTION';
const OUT_OF_RANGE = 'SOCKETNAUT_ERR_OPTION_OUT_OF_RANGE';
const workerURL = fixture('http-server.js');

const cases: Case[] = [
  { title: 'no options', options: () => undefined, Class: TypeError, code: INVALID, option: 'options' },
  { title: 'options null', options: () => null, Class: TypeError, code: INVALID, option: 'options' },
  { title: 'server missing', options: () => ({ workerURL }), Class: TypeError, code: INVALID, option: 'server' },
  {
    title: 'server not a net.Server',
    options: () => ({ server: { listen() {} }, workerURL }),
    Class: TypeError,
    code: INVALID,
    option: 'server',
  },
  {
    title: 'workerURL missing',
    options: (server) => ({ server }),
    Class: TypeError,
    code: INVALID,
    option: 'workerURL',
  },
  {
    title: 'workerURL empty',
    options: (server) => ({ server, workerURL: '' }),
    Class: TypeError,
    code: INVALID,
    option: 'workerURL',
  },
  {
    title: 'workerURL a number',
    options: (server) => ({ server, workerURL: 42 }),
    Class: TypeError,
    code: INVALID,
    option: 'workerURL',
  },
  {
    title: 'workerCount 0',
    options: (server) => ({ server, workerURL, workerCount: 0 }),
    Class: RangeError,
    code: OUT_OF_RANGE,
    option: 'workerCount',
  },
  {
    title: 'workerCount 1.5',
    options: (server) => ({ server, workerURL, workerCount: 1.5 }),
    Class: RangeError,
    code: OUT_OF_RANGE,
    option: 'workerCount',
  },
  {
    title: "workerCount 'two'",
    options: (server) => ({ server, workerURL, workerCount: 'two' }),
    Class: TypeError,
    code: INVALID,
    option: 'workerCount',
  },
  {
    title: 'workerCount with minWorkers',
    options: (server) => ({ server, workerURL, workerCount: 2, minWorkers: 1 }),
    Class: TypeError,
    code: INVALID,
    option: 'workerCount',
  },
  {
    title: 'minWorkers -1',
    options: (server) => ({ server, workerURL, minWorkers: -1 }),
    Class: RangeError,
    code: OUT_OF_RANGE,
    option: 'minWorkers',
  },
  {
    title: 'maxWorkers below minWorkers',
    options: (server) => ({ server, workerURL, minWorkers: 3, maxWorkers: 2 }),
    Class: RangeError,
    code: OUT_OF_RANGE,
    option: 'maxWorkers',
  },
  {
    title: "transport 'udp'",
    options: (server) => ({ server, workerURL, transport: 'udp' }),
    Class: TypeError,
    code: INVALID,
    option: 'transport',
  },
  {
    title: "balance 'random'",
    options: (server) => ({ server, workerURL, balance: 'random' }),
    Class: TypeError,
    code: INVALID,
    option: 'balance',
  },
  {
    title: 'workersCheckingInterval 0',
    options: (server) => ({ server, workerURL, workersCheckingInterval: 0 }),
    Class: RangeError,
    code: OUT_OF_RANGE,
    option: 'workersCheckingInterval',
  },
  {
    title: 'queueLimit -1',
    options: (server) => ({ server, workerURL, queueLimit: -1 }),
    Class: RangeError,
    code: OUT_OF_RANGE,
    option: 'queueLimit',
  },
  {
    title: 'workerOptions.eval true',
    options: (server) => ({ server, workerURL, workerOptions: { eval: true } }),
    Class: TypeError,
    code: INVALID,
    option: 'workerOptions.eval',
  },
  {
    title: "transport 'handoff' with a tls.Server",
    options: (server) => ({ server, workerURL, transport: 'handoff' }),
    tls: true,
    Class: TypeError,
    code: INVALID,
    option: 'transport',
  },
];

t.test('invalid options throw at construction', async (t) => {
  for (const c of cases) {
    t.test(c.title, async (t) => {
      const server = c.tls ? tls.createServer(tlsFiles) : net.createServer();
      const listenersBefore = server.listenerCount('connection');
      let thrown: unknown;
      try {
        createServiceProxy(c.options(server) as ServiceProxyOptions);
      } catch (err) {
        thrown = err;
      }
      t.ok(thrown instanceof c.Class, `throws a ${c.Class.name}`);
      const err = thrown as Error & { code?: string };
      t.equal(err?.code, c.code, 'stable code');
      t.match(err?.message, `"${c.option}"`, 'message names the option');
      // A rejected configuration must leave the caller's server untouched.
      t.equal(server.listenerCount('connection'), listenersBefore, 'no connection listener added to the server');
      t.notOk(
        (server as net.Server & { pauseOnConnect?: boolean }).pauseOnConnect,
        'server not switched to pauseOnConnect',
      );
    });
  }
});

t.test('valid options do not throw', async (t) => {
  const parallelism = Math.max(1, os.availableParallelism());
  const valid: [Omit<ServiceProxyOptions, 'server'>, number, number][] = [
    [{ workerURL, workerCount: 1 }, 1, 1],
    [{ workerURL: workerURL.href, minWorkers: 0, maxWorkers: 1 }, 0, 1],
    [{ workerURL: 'test/fixtures/http-server.js', minWorkers: 0 }, 0, parallelism],
    [
      {
        workerURL,
        minWorkers: 0,
        maxWorkers: 2,
        transport: 'pipe',
        balance: 'ip-hash',
        workersCheckingInterval: 1,
        queueLimit: 0,
        queueTimeout: 1,
        workerStartTimeout: 1000,
        workerOptions: { env: {} },
      },
      0,
      2,
    ],
    [{ workerURL, minWorkers: 0, transport: 'auto', balance: 'round-robin' }, 0, parallelism],
    [{ workerURL, minWorkers: 0, transport: 'handoff', balance: 'least-connections' }, 0, parallelism],
  ];
  for (const [options, min, max] of valid) {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.teardown(() => {
      server.close();
    });
    let proxy: ServiceProxy | undefined;
    t.doesNotThrow(
      () => {
        proxy = createServiceProxy({ ...options, server });
      },
      `accepted ${JSON.stringify(options)}`,
    );
    if (!proxy) continue;
    const started = proxy;
    t.teardown(() => started.shutdown({ timeout: 1000 }));
    t.equal(started.minWorkers, min, 'minWorkers');
    t.equal(started.maxWorkers, max, 'maxWorkers');
    // Valid, yet refused at start-up where this Node cannot run the transport asked for.
    const refusal = options.transport === 'handoff' ? skipUnlessSupported('handoff') : false;
    if (refusal) {
      const [err] = (await once(started, 'error')) as [NodeJS.ErrnoException];
      t.equal(err.code, 'SOCKETNAUT_ERR_HANDOFF_UNSUPPORTED', `then refused at start-up: ${refusal}`);
    } else {
      const failed = once(started, 'error').then(([err]) => Promise.reject(err as Error));
      await Promise.race([once(started, 'ready'), failed]);
    }
    await started.shutdown({ timeout: 1000 });
  }
});
