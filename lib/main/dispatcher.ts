import type net from 'node:net';
import type { Logger } from 'streams-logger';
import type { Balancer } from '../balancers/index.ts';
import { Level } from '../logging.ts';
import { storedAddressInfo } from '../protocol/address-info.ts';
import type { ProxyHeaderGate } from '../proxy-protocol/gate.ts';
import type { Delivery, DispatchOutcome, Route } from '../transports/index.ts';
import { ConnectionQueue } from './connection-queue.ts';
import type { ConnectionLedger } from './ledger.ts';
import type { WorkerPool } from './pool.ts';
import type { SessionAffinity } from './session-affinity.ts';
import type { ConnectionCounters } from './stats.ts';
import type { WorkerRecord } from './worker-record.ts';

export interface DispatcherSettings {
  /** Which of the workers' servers the connections are for: 0 for the public port's. */
  sharedPort: number;
  /** The connections come to a Unix socket. */
  unix: boolean;
  /** The workers that may take a connection now. */
  candidates: () => readonly WorkerRecord[];
  ledger: ConnectionLedger;
  pool: WorkerPool;
  balancer: Balancer;
  /** Where given, a client's new connections follow the Engine.IO session a worker just issued it. */
  affinity?: SessionAffinity | undefined;
  gate: ProxyHeaderGate | undefined;
  queueLimit: number;
  queueTimeout: number;
  overloadResponse: string | Buffer | undefined;
  log: Logger;
}

const TURN_AWAY_LINGER_MS = 1000;

// A connection waiting in the queue may be reset by its client; that must not throw on the main thread.
function ignoreError(): void {}

/**
 * The way of every accepted connection: PROXY-header gate, admission against the limits, a worker
 * picked by the balancer (or the queue while none can take it), and the transport. Keeps the ledger
 * in step with each connection's fate, whatever it is.
 */
export class Dispatcher {
  readonly counters: ConnectionCounters = {
    accepted: 0,
    dispatched: 0,
    redispatched: 0,
    refused: 0,
    queued: 0,
    expired: 0,
    acceptErrors: 0,
    proxyHeaderRejected: 0,
    forwarded: 0,
  };
  readonly #candidates: () => readonly WorkerRecord[];
  readonly #ledger: ConnectionLedger;
  readonly #pool: WorkerPool;
  readonly #balancer: Balancer;
  readonly #affinity: SessionAffinity | undefined;
  readonly #gate: ProxyHeaderGate | undefined;
  readonly #queue: ConnectionQueue;
  readonly #overloadResponse: string | Buffer | undefined;
  readonly #log: Logger;
  /** The workers that could not take a connection, kept only for connections that met one. */
  readonly #refusedBy = new WeakMap<net.Socket, WorkerRecord[]>();
  #delivery: Delivery | undefined;
  #closed = false;
  /** Given with each connection to the transport: which server it is for, and who hears its fate. */
  readonly route: Route<WorkerRecord>;

  constructor(settings: DispatcherSettings) {
    this.#candidates = settings.candidates;
    this.route = { sharedPort: settings.sharedPort, outcome: this.outcome, unix: settings.unix };
    this.#ledger = settings.ledger;
    this.#pool = settings.pool;
    this.#balancer = settings.balancer;
    this.#affinity = settings.affinity;
    this.#gate = settings.gate;
    this.#overloadResponse = settings.overloadResponse;
    this.#log = settings.log;
    this.#queue = new ConnectionQueue(settings.queueLimit, settings.queueTimeout, {
      expired: (socket) => {
        this.counters.expired++;
        this.#log.warn(`A connection waited ${settings.queueTimeout} ms for a worker and was closed`);
        this.#turnAway(socket);
      },
      abandoned: (socket) => this.#turnAway(socket, false),
    });
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** What becomes of each connection given to a delivery. */
  readonly outcome: DispatchOutcome<WorkerRecord> = {
    delivered: (record, socket) => this.#ledger.delivered(record.account, this.#peerOf(socket)),
    refused: (record, socket) => {
      this.#ledger.unassign(record.account);
      this.#redispatch(record, socket);
    },
    dropped: (record, socket) => {
      this.#ledger.unassign(record.account);
      this.#turnAway(socket, false);
    },
    ended: (record, socket) =>
      this.#ledger.ended(record.account, 1, this.#ledger.trackPeers ? [this.#peerOf(socket)] : undefined),
  };

  /**
   * A worker gave back, unread, a connection for a server its app had closed: another worker takes it.
   * `held` says the worker's account held it (the proxy had moved it there); one the worker accepted
   * itself (reuseport) was only admitted.
   */
  givenBack(record: WorkerRecord, socket: net.Socket, held: boolean): void {
    if (held) this.#ledger.returned(record.account, this.#peerOf(socket));
    this.#redispatch(record, socket);
  }

  #redispatch(record: WorkerRecord, socket: net.Socket): void {
    this.counters.redispatched++;
    this.#log.debug(`Worker ${record.threadId} refused a connection; offering it to another worker`);
    this.#refusedBy.set(socket, [...(this.#refusedBy.get(socket) ?? []), record]);
    this.#dispatch(socket);
  }

  /** Whether a client's new connections follow the Engine.IO session a worker just issued it. */
  get followsSessions(): boolean {
    return this.#affinity !== undefined;
  }

  /** Worker `worker` issued an Engine.IO session to the client at `address`. */
  sessionIssued(worker: number, address: string): void {
    this.#affinity?.issued(address, worker);
  }

  /** Connections accepted before this are queued; from now on they go to workers through `delivery`. */
  useDelivery(delivery: Delivery): void {
    this.#delivery = delivery;
  }

  readonly onConnection = (socket: net.Socket): void => {
    this.counters.accepted++;
    if (this.#closed) {
      socket.destroy();
      return;
    }
    const distrust = this.#gate?.distrust(socket);
    if (distrust) {
      this.#rejectProxyHeader(socket, distrust);
      return;
    }
    if (this.#admit(socket)) this.#prepare(socket);
    else socket.destroy();
  };

  /** A TLS connection is counted in when its TCP connection is accepted: false when a limit refuses it. */
  admitBeforeHandshake(socket: net.Socket): boolean {
    this.counters.accepted++;
    return !this.#closed && this.#admit(socket);
  }

  /** A connection admitted before its handshake closed before finishing it. */
  handshakeAbandoned(socket: net.Socket): void {
    this.#ledger.release(this.#peerOf(socket));
  }

  /** A connection admitted before its handshake finished it. */
  readonly onSecureConnection = (socket: net.Socket): void => {
    if (this.#closed) this.#turnAway(socket, false);
    else this.#prepare(socket);
  };

  #admit(socket: net.Socket): boolean {
    const limit = this.#ledger.admit(this.#peerOf(socket));
    if (!limit) return true;
    this.counters.refused++;
    if (this.#log.level >= Level.DEBUG)
      this.#log.debug(`Refused a connection from ${socket.remoteAddress}: ${limit} reached`);
    return false;
  }

  /** Accepting failed (out of descriptors, say); libuv has shed the connection and keeps accepting. */
  acceptFailed(err: Error): void {
    if (this.counters.acceptErrors++ % 1000 === 0) this.#log.warn(`Accepting a connection failed: ${err.message}`);
  }

  /** A worker began serving: the connections waiting for one go now. */
  workerReady(): void {
    this.#queue.takeAll((socket) => this.#prepare(socket));
  }

  /** No worker can be started: the connections waiting for one are turned away. */
  turnAwayWaiting(): void {
    this.#queue.takeAll((socket) => this.#turnAway(socket));
  }

  /** A worker exited: if connections wait and no worker is left, start one, as the backoff allows. */
  workerExited(): void {
    if (!this.#closed && this.#queue.length > 0 && this.#pool.size === 0) this.#pool.growForWaiting();
  }

  headerRejectedInWorker(): void {
    this.counters.proxyHeaderRejected++;
  }

  /** Takes no new connection from now on, and turns away those waiting. */
  close(): void {
    this.#closed = true;
    this.#balancer.close?.();
    this.turnAwayWaiting();
  }

  /** Where the main thread may read a connection, a PROXY header is read here, before a worker is chosen. */
  #prepare(socket: net.Socket): void {
    const gate = this.#gate;
    if (!gate || !this.#delivery?.readsOnMainThread) {
      this.#dispatch(socket);
      return;
    }
    gate.read(socket, (rejection) => {
      if (rejection === undefined) {
        this.#dispatch(socket);
        return;
      }
      this.#turnAway(socket, false);
      this.#rejectProxyHeader(socket, rejection);
    });
  }

  #dispatch(socket: net.Socket): void {
    if (socket.destroyed || this.#closed) {
      this.#turnAway(socket, !socket.destroyed);
      return;
    }
    const delivery = this.#delivery;
    const ready = this.#candidates();
    const refusedBy = this.#refusedBy.get(socket);
    const candidates = refusedBy ? ready.filter((record) => !refusedBy.includes(record)) : ready;
    const record = delivery && (this.#sessionOwner(candidates, socket) ?? this.#balancer.pick(candidates, socket));
    if (!record) {
      this.#enqueue(socket);
      return;
    }
    if (record.connections > 0) this.#pool.growIfAllBusy();
    this.#ledger.assign(record.account);
    this.counters.dispatched++;
    delivery.deliver(record, socket, this.route);
  }

  #sessionOwner(candidates: readonly WorkerRecord[], socket: net.Socket): WorkerRecord | undefined {
    // The client a PROXY header named, where the main thread read one; as the worker reports it.
    const id = this.#affinity?.follow(storedAddressInfo(socket)?.remote.address ?? socket.remoteAddress);
    return id === undefined ? undefined : candidates.find((record) => record.id === id);
  }

  #enqueue(socket: net.Socket): void {
    if (this.#delivery) this.#pool.growForWaiting();
    if (socket.listenerCount('error') === 0) socket.on('error', ignoreError);
    if (this.#queue.push(socket)) {
      this.counters.queued++;
      return;
    }
    this.counters.expired++;
    this.#log.warn(`The connection queue is full (${this.#queue.limit}); closing a new connection`);
    this.#turnAway(socket);
  }

  #rejectProxyHeader(socket: net.Socket, reason: string): void {
    this.counters.proxyHeaderRejected++;
    if (this.#log.level >= Level.DEBUG)
      this.#log.debug(`Rejected a connection from ${socket.remoteAddress}: ${reason}`);
    socket.destroy();
  }

  #peerOf(socket: net.Socket): string {
    return this.#ledger.peerOf(socket);
  }

  /** Closes a connection no worker will take, counting it out and, if `explain`, telling HTTP clients why. */
  #turnAway(socket: net.Socket, explain = true): void {
    this.#ledger.release(this.#peerOf(socket));
    const response = this.#overloadResponse;
    if (!explain || response === undefined || socket.destroyed) {
      socket.destroy();
      return;
    }
    // Reading what the client sent lets the close be a FIN after the response, not a reset.
    socket.resume();
    socket.end(response);
    setTimeout(() => socket.destroy(), TURN_AWAY_LINGER_MS).unref();
  }
}
