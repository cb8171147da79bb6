import http from 'node:http';
import t from 'tap';
import { io, type Socket } from 'socket.io-client';
import { fixture, transports, withDeadline } from '../helpers.ts';
import { startLauncher, transportsHere } from '../launcher.ts';

const app = fixture('socketio-echo.js').pathname;
const CLIENTS = 50;
const MESSAGES = 20;

interface ClientRun {
  address: string;
  /** Every error, disconnection or wrong answer the client met; empty when all went well. */
  problems: string[];
  threads: Set<number>;
  acked: number;
}

/** What engine.io-client tells of a failed transport: the HTTP status, and the body when there is one. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const { description, context } = err as Error & { description?: unknown; context?: { responseText?: string } };
  const body = typeof context?.responseText === 'string' ? ` ${context.responseText}` : '';
  return `${err.message}${description === undefined ? '' : ` (${String(description)}${body})`}`;
}

/** One long-polling client on its own address: connects, then emits MESSAGES echoes, each with an ack. */
async function runClient(port: number, address: string): Promise<ClientRun> {
  const run: ClientRun = { address, problems: [], threads: new Set(), acked: 0 };
  // No keep-alive: each poll is a new connection, which the launcher balances afresh.
  const socket: Socket = io(`http://127.0.0.1:${port}`, {
    transports: ['polling'],
    agent: new http.Agent({ localAddress: address, keepAlive: false }) as never,
    forceNew: true,
    reconnection: false,
    timeout: 5000,
  });
  socket.on('disconnect', (reason, details) => {
    if (reason !== 'io client disconnect')
      run.problems.push(`disconnect: ${reason}${details ? ` ${describe(details)}` : ''}`);
  });
  try {
    // A session closed before its namespace connects emits neither 'connect' nor 'connect_error'.
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', (err) => reject(new Error(`connect_error: ${describe(err)}`)));
      socket.once('disconnect', (reason) => reject(new Error(`closed before connecting: ${reason}`)));
    });
    for (let n = 0; n < MESSAGES && socket.connected; n++) {
      const reply = (await socket.timeout(5000).emitWithAck('echo', n)) as { n: number; threadId: number };
      if (reply.n !== n) run.problems.push(`echo ${n} answered ${reply.n}`);
      run.threads.add(reply.threadId);
      run.acked++;
    }
  } catch (err) {
    run.problems.push((err as Error).message);
  } finally {
    socket.close();
  }
  return run;
}

function runAll(port: number): Promise<ClientRun[]> {
  return Promise.all(Array.from({ length: CLIENTS }, (_, i) => runClient(port, `127.0.0.${100 + i}`)));
}

// With ip-hash each client's connections reach one worker; without it, the requests of a session
// reach any worker, which sends each to the session's owner.
const variants = [
  ...(await transportsHere(transports)).map((transport) => ({ transport, balance: 'ip-hash' })),
  { transport: 'auto', balance: 'least-connections' },
];

for (const { transport, balance } of variants) {
  t.test(
    `${transport} × ${balance}: 50 long-polling clients each keep their session, and every echo comes back`,
    async (t) => {
      const launcher = await withDeadline(
        startLauncher(t, [app, '--workers', '4', '--balance', balance, '--transport', transport]),
        20_000,
        'the launcher to start',
      );
      const runs = await runAll(launcher.port);
      const problems = runs.flatMap((run) => run.problems.map((problem) => `${run.address}: ${problem}`));
      t.same(problems, [], 'no client met an error');
      t.equal(
        runs.reduce((sum, run) => sum + run.acked, 0),
        CLIENTS * MESSAGES,
        'every echo was acknowledged',
      );
      t.same(
        runs.filter((run) => run.threads.size !== 1).map((run) => run.address),
        [],
        "each client's session stayed on its worker",
      );
      const workers = new Set(runs.flatMap((run) => [...run.threads]));
      // Least-connections spreads sessions over every worker; ip-hash spreads addresses by their hash.
      if (balance === 'least-connections') t.equal(workers.size, 4, 'the sessions were spread over the 4 workers');
      else t.ok(workers.size > 1, `the sessions were spread over ${workers.size} workers`);
    },
  );
}
