import net from 'node:net';
import t from 'tap';
import type { Logger } from 'streams-logger';
import type { ConnectionLedger as Ledger } from '../../lib/main/ledger.ts';
import type { WorkerPool } from '../../lib/main/pool.ts';
import type { SharedPorts as Ports } from '../../lib/main/shared-ports.ts';
import type { WorkerRecord } from '../../lib/main/worker-record.ts';
import type { ToWorker } from '../../lib/protocol/messages.ts';
import { freePort, waitFor } from '../helpers.ts';

// Internal: an app's other server's port, opened once on the main thread for the workers listening
// there. One whose only worker leaves while the bind is under way must not stay bound with no worker.
const { SharedPorts } = (await import(new URL('../../dist/lib/main/shared-ports.js', import.meta.url).href)) as {
  SharedPorts: typeof Ports;
};
const { ConnectionLedger, WorkerAccount } = (await import(
  new URL('../../dist/lib/main/ledger.js', import.meta.url).href
)) as { ConnectionLedger: typeof Ledger; WorkerAccount: typeof import('../../lib/main/ledger.ts').WorkerAccount };

const quietLog = { level: 0, debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;

/** Whether this process can bind `port` on loopback now: the shared port has let it go. */
async function canBind(port: number): Promise<boolean> {
  const probe = net.createServer();
  const bound = await new Promise<boolean>((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (bound) await new Promise((resolve) => probe.close(resolve));
  return bound;
}

t.test('a shared port whose only worker exits before the bind completes is closed once bound', async (t) => {
  const ports = new SharedPorts({
    ledger: new ConnectionLedger({ maxConnections: 0, maxConnectionsPerIp: 0, perIpPrefix: 64 }),
    pool: { ready: [], size: 0, growForWaiting() {}, growIfAllBusy() {} } as unknown as WorkerPool,
    balance: 'least-connections',
    perIpPrefix: 64,
    queueLimit: 10,
    queueTimeout: 1000,
    log: quietLog,
  });
  t.teardown(() => ports.close());
  const sent: ToWorker[] = [];
  const record = {
    id: 1,
    slot: 0,
    threadId: 1,
    state: 'starting',
    connections: 0,
    account: new WorkerAccount(),
    send: (message: ToWorker) => sent.push(message),
  } as unknown as WorkerRecord;

  const port = await freePort();
  ports.listen(record, 1, { key: `127.0.0.1:${port}`, port, host: '127.0.0.1' });
  t.equal(ports.stats().length, 1, 'the port is being opened');
  // The worker exits in the same turn: the bind has not completed yet.
  (record as { state: string }).state = 'exited';
  ports.workerExited(record);

  await waitFor(() => canBind(port), { timeout: 3000, what: `port ${port} free again` });
  t.pass('the port was let go once bound');
  t.same(ports.stats(), [], 'no shared port is left');
  t.same(sent, [], 'the exited worker was told nothing');
});
