import type net from 'node:net';
import { peerKey } from '../protocol/address-info.ts';
import { LocalCounts, type AdmissionCounts, type LimitName } from './admission-counts.ts';

export interface ConnectionLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** IPv6 clients are one peer per network of this many bits. */
  perIpPrefix: number;
}

export type { LimitName } from './admission-counts.ts';

/** A worker's share of the open connections. Only the ledger changes it. */
export class WorkerAccount {
  /** Given to the worker, not yet known to have reached it (a pipe still connecting). */
  pending = 0;
  /** Reached the worker, not yet ended. */
  held = 0;
  /** Given to the worker since it started. */
  total = 0;
  /** Peers of the held connections, one count per connection; kept only under a per-address limit. */
  peers: Map<string, number> | undefined;
  /** When the account last fell to no connection, for idle reaping. */
  idleSince = performance.now();
  /** Called whenever the account falls to no connection. */
  onIdle: (() => void) | undefined;
  /** Called whenever no connection is on its way to the worker any more: each reached it, or came back. */
  onArrived: (() => void) | undefined;
  /** Those the worker accepted itself, counted by its transport (reuseport). */
  own: { open(): number; total(): number } | undefined;

  get connections(): number {
    return this.pending + this.held + (this.own?.open() ?? 0);
  }

  /** Given to the worker, or accepted by it, since it started. */
  get given(): number {
    return this.total + (this.own?.total() ?? 0);
  }
}

/**
 * The one owner of every open-connection count: in all, per peer address, and per worker. A
 * connection is admitted once, then is either in the main thread's hands or in one worker's
 * account (and back, when refused or returned), and leaves through exactly one of release() (from
 * the main thread's hands) or ended() and workerExited() (from a worker's). Limits are checked
 * against these same counts.
 */
export class ConnectionLedger {
  #maxConnections: number;
  readonly #maxPerPeer: number;
  readonly #ipv6PrefixBits: number;
  #counts: AdmissionCounts = new LocalCounts();

  constructor(limits: ConnectionLimits) {
    this.#maxConnections = limits.maxConnections;
    this.#maxPerPeer = limits.maxConnectionsPerIp;
    this.#ipv6PrefixBits = limits.perIpPrefix;
  }

  /** Sets maxConnections where the user left it unlimited. */
  defaultMaxConnections(limit: number): void {
    if (this.#maxConnections === 0) this.#maxConnections = limit;
  }

  get maxConnections(): number {
    return this.#maxConnections;
  }

  /** From now on the counts are `counts` (shared with workers that admit connections themselves), starting from these. */
  useCounts(counts: AdmissionCounts): void {
    if (this.#counts instanceof LocalCounts) this.#counts.copyInto(counts);
    this.#counts = counts;
  }

  /** Whether connections are counted per peer address: workers then report the peer of each that ends. */
  get trackPeers(): boolean {
    return this.#maxPerPeer > 0;
  }

  /** The peer a connection counts against; '' when no per-address limit applies. */
  peerOf(socket: net.Socket): string {
    return this.trackPeers ? peerKey(socket, this.#ipv6PrefixBits) : '';
  }

  // A connection with no address (over a Unix socket) is not counted per peer.
  #perPeerLimit(peer: string): boolean {
    return this.#maxPerPeer > 0 && peer !== '';
  }

  /** Counts a new connection in, or returns the limit it would break. */
  admit(peer: string): LimitName | undefined {
    return this.#counts.admit(this.#perPeerLimit(peer) ? peer : '', {
      maxConnections: this.#maxConnections,
      maxConnectionsPerIp: this.#maxPerPeer,
    });
  }

  /** A connection in the main thread's hands ended there. */
  release(peer: string): void {
    this.#counts.release(this.#perPeerLimit(peer) ? peer : '');
  }

  /** The connection is on its way to the worker. */
  assign(account: WorkerAccount): void {
    account.pending++;
    account.total++;
  }

  /** It came back to the main thread without reaching the worker: refused, or dropped on the way. */
  unassign(account: WorkerAccount): void {
    account.pending--;
    if (account.pending === 0) account.onArrived?.();
    this.#checkIdle(account);
  }

  /** It reached the worker, which now holds it until it ends. */
  delivered(account: WorkerAccount, peer: string): void {
    account.pending--;
    account.held++;
    if (account.pending === 0) account.onArrived?.();
    if (this.#perPeerLimit(peer)) {
      account.peers ??= new Map();
      account.peers.set(peer, (account.peers.get(peer) ?? 0) + 1);
    }
  }

  /** It came back, unread, from the worker that held it (its app had closed the server): still admitted. */
  returned(account: WorkerAccount, peer: string): void {
    account.held--;
    if (this.#perPeerLimit(peer) && account.peers) decrement(account.peers, peer);
    this.#checkIdle(account);
  }

  /** Connections the worker held ended; `peers` names them when tracking peers. */
  ended(account: WorkerAccount, count: number, peers?: readonly string[]): void {
    if (count === 0) return;
    account.held -= count;
    const named = this.#maxPerPeer > 0 && peers ? peers : [];
    for (const peer of named) {
      this.release(peer);
      if (peer !== '' && account.peers) decrement(account.peers, peer);
    }
    for (let i = named.length; i < count; i++) this.#counts.release('');
    this.#checkIdle(account);
  }

  /** The worker is gone, and every connection it held with it. Those still on their way are not counted here. */
  workerExited(account: WorkerAccount): void {
    const peers = account.peers
      ? [...account.peers].flatMap(([peer, count]) => Array<string>(count).fill(peer))
      : undefined;
    this.ended(account, account.held, peers);
  }

  #checkIdle(account: WorkerAccount): void {
    if (account.connections !== 0) return;
    account.idleSince = performance.now();
    account.onIdle?.();
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  // A count below zero is kept, not floored: it would show a connection ended twice.
  const remaining = (counts.get(key) ?? 0) - 1;
  if (remaining === 0) counts.delete(key);
  else counts.set(key, remaining);
}
