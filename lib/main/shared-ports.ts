import net from 'node:net';
import type { Logger } from 'streams-logger';
import { type BalancerName, createBalancer } from '../balancers/index.ts';
import type { ListenFailure, ListenRequest } from '../protocol/messages.ts';
import type { Deliveries } from '../transports/index.ts';
import { Dispatcher } from './dispatcher.ts';
import type { ConnectionLedger } from './ledger.ts';
import type { WorkerPool } from './pool.ts';
import type { ListenerStats } from './stats.ts';
import type { WorkerRecord } from './worker-record.ts';

export interface SharedPortsSettings {
  ledger: ConnectionLedger;
  pool: WorkerPool;
  balance: BalancerName;
  /** IPv6 clients are one client per network of this many bits, for ip-hash. */
  perIpPrefix: number;
  queueLimit: number;
  queueTimeout: number;
  log: Logger;
}

/** One of the app's other servers' ports, opened once here for every worker whose server listens there. */
interface SharedPort {
  /** Names the worker's server the connections are for, in messages to the workers. */
  readonly id: number;
  readonly key: string;
  readonly server: net.Server;
  readonly dispatcher: Dispatcher;
  /** Unix-socket connections cannot move to a thread: they are piped. */
  readonly unix: boolean;
  readonly workers: Set<WorkerRecord>;
  /** Workers waiting for the bind to finish, with the request each will be answered by. */
  waiting: { record: WorkerRecord; request: number }[];
}

/**
 * The ports of the app's other servers (a metrics or admin port, a Unix socket), each opened once
 * on the main thread and shared by every worker that listens there, as node:cluster shares them.
 */
export class SharedPorts {
  readonly #settings: SharedPortsSettings;
  readonly #byKey = new Map<string, SharedPort>();
  readonly #byId = new Map<number, SharedPort>();
  #nextId = 1;
  #deliveries: Deliveries | undefined;
  #closed = false;

  constructor(settings: SharedPortsSettings) {
    this.#settings = settings;
  }

  /** Connections accepted before this wait; from now on they go to workers through `deliveries`. */
  useDeliveries(deliveries: Deliveries): void {
    this.#deliveries = deliveries;
    for (const port of this.#byId.values()) port.dispatcher.useDelivery(this.#deliveryFor(port.unix, deliveries));
  }

  /** A worker's server asks to listen: the bind is made once, and every worker asking shares it. */
  listen(record: WorkerRecord, request: number, listen: ListenRequest): void {
    if (this.#closed) return;
    const port = this.#byKey.get(listen.key) ?? this.#open(listen);
    if (port.server.listening) this.#join(port, record, request);
    else port.waiting.push({ record, request });
  }

  unlisten(record: WorkerRecord, id: number): void {
    const port = this.#byId.get(id);
    if (port) this.#leave(port, record);
  }

  /** A worker gave back a connection for port `id`, its server there closed: another worker takes it. */
  givenBack(record: WorkerRecord, id: number, socket: net.Socket): void {
    const port = this.#byId.get(id);
    if (port) {
      port.dispatcher.givenBack(record, socket, true);
      return;
    }
    // The port closed meanwhile: no worker listens there any more.
    const { ledger } = this.#settings;
    ledger.ended(record.account, 1, ledger.trackPeers ? [ledger.peerOf(socket)] : undefined);
    socket.destroy();
  }

  /** A worker began serving: connections waiting for one go now. */
  workerReady(): void {
    for (const port of this.#byId.values()) port.dispatcher.workerReady();
  }

  workerExited(record: WorkerRecord): void {
    for (const port of [...this.#byId.values()]) this.#leave(port, record);
  }

  /** Stops accepting on every port. */
  close(): void {
    this.#closed = true;
    for (const port of [...this.#byId.values()]) this.#close(port);
  }

  stats(): ListenerStats[] {
    return [...this.#byId.values()].map((port) => ({
      address: port.server.address(),
      workers: port.workers.size,
      ...port.dispatcher.counters,
    }));
  }

  #deliveryFor(unix: boolean, deliveries: Deliveries) {
    return unix ? deliveries.unix : deliveries.tcp;
  }

  #open(listen: ListenRequest): SharedPort {
    const { ledger, pool, balance, perIpPrefix, queueLimit, queueTimeout, log } = this.#settings;
    const id = this.#nextId++;
    const workers = new Set<WorkerRecord>();
    const unix = listen.path !== undefined;
    const dispatcher = new Dispatcher({
      sharedPort: id,
      unix,
      candidates: () => pool.ready.filter((record) => workers.has(record)),
      ledger,
      pool,
      balancer: createBalancer(balance, perIpPrefix),
      gate: undefined,
      queueLimit,
      queueTimeout,
      overloadResponse: undefined,
      log,
    });
    const server = net.createServer({ pauseOnConnect: true });
    const port: SharedPort = { id, key: listen.key, server, dispatcher, unix, workers, waiting: [] };
    if (this.#deliveries) dispatcher.useDelivery(this.#deliveryFor(unix, this.#deliveries));
    this.#byKey.set(listen.key, port);
    this.#byId.set(id, port);
    server.on('connection', dispatcher.onConnection);
    server.once('listening', () => {
      log.debug(`Listening on ${describe(server.address())} for the workers' servers`);
      for (const { record, request } of port.waiting.splice(0)) this.#join(port, record, request);
      // Every worker that asked left while the bind was under way.
      if (workers.size === 0) this.#close(port);
    });
    server.on('error', (err: NodeJS.ErrnoException) => {
      // Once bound, an error is a failed accept (out of descriptors, say), which libuv has shed.
      if (server.listening) {
        dispatcher.acceptFailed(err);
        return;
      }
      // A later listen() tries again, as it would without socketnaut.
      this.#forget(port);
      const failure = listenFailure(err);
      for (const { record, request } of port.waiting.splice(0)) this.#reply(record, request, id, null, failure);
    });
    const { port: number, host, path, backlog, ipv6Only } = listen;
    server.listen(path !== undefined ? { path, backlog } : { port: number, host, backlog, ipv6Only });
    return port;
  }

  #join(port: SharedPort, record: WorkerRecord, request: number): void {
    if (record.state === 'exited') return;
    port.workers.add(record);
    // A worker takes piped connections on its Unix socket; where TCP ones move, it opens one on request.
    const deliveries = this.#deliveries;
    const pipePath = port.unix && deliveries?.tcp.name !== 'pipe' ? deliveries?.unix.pipePathFor(record.id) : undefined;
    this.#reply(record, request, port.id, port.server.address(), undefined, pipePath);
    port.dispatcher.workerReady();
  }

  #reply(
    record: WorkerRecord,
    request: number,
    id: number,
    address: net.AddressInfo | string | null,
    failure?: ListenFailure,
    pipePath?: string,
  ): void {
    record.send({ type: 'listen-result', request, sharedPort: id, address, failure, pipePath });
  }

  // As a shared handle in node:cluster, the port closes once no worker listens there; one still
  // binding closes once bound.
  #leave(port: SharedPort, record: WorkerRecord): void {
    port.workers.delete(record);
    port.waiting = port.waiting.filter((waiting) => waiting.record !== record);
    if (port.workers.size === 0 && port.waiting.length === 0 && port.server.listening) this.#close(port);
  }

  #close(port: SharedPort): void {
    this.#forget(port);
    port.server.close();
    port.dispatcher.close();
  }

  #forget(port: SharedPort): void {
    this.#byKey.delete(port.key);
    this.#byId.delete(port.id);
  }
}

export function listenFailure(err: NodeJS.ErrnoException & { address?: string; port?: number }): ListenFailure {
  return {
    message: err.message,
    code: err.code,
    errno: err.errno,
    syscall: err.syscall,
    address: err.address,
    port: err.port,
  };
}

function describe(address: net.AddressInfo | string | null): string {
  if (address === null || typeof address === 'string') return String(address);
  return `${address.address}:${address.port}`;
}
