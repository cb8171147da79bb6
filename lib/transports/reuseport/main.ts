import { once } from 'node:events';
import net from 'node:net';
import { MessageChannel } from 'node:worker_threads';
import type { Logger } from 'streams-logger';
import { ERR_WORKER_START } from '../../errors.ts';
import { answerAsListening } from '../../protocol/seeming-listen.ts';
import { connectionBudget } from '../../fd-budget.ts';
import type { ReuseportBoot, ToWorker } from '../../protocol/messages.ts';
import type { DispatchTarget } from '../delivery.ts';
import type { Intake, OwnConnections, OwnCounters } from '../intake.ts';
import { ACCEPTING, RESTING, SharedCounts } from './shared-counts.ts';

export interface ReuseportSettings {
  /** The public server, listening with `reusePort: true`. */
  server: net.Server;
  /** Whether it listens on IPv6 only, as the listeners that join it must. */
  ipv6Only(): boolean;
  /** Takes a connection the main thread accepted on a listener no worker holds. */
  accept: (socket: net.Socket) => void;
  acceptFailed: (err: Error) => void;
  /** Read when each worker starts: maxConnections may be set from the open-file limit meanwhile. */
  limits(): { maxConnections: number; maxConnectionsPerIp: number; perIpPrefix: number };
  balance: string;
  trusted: net.BlockList | undefined;
  /** The pool's bound: the shared counts have a place for each worker that may live at once. */
  maxWorkers: number;
  log: Logger;
}

interface Member {
  readonly target: DispatchTarget;
  readonly index: number;
  listeners: number;
  meshed: boolean;
}

/** Entries of each peer table per connection the limits allow: load below a half keeps probes short. */
const PEER_TABLE_LOAD = 2;
const MIN_PEER_TABLE = 1024;
const MAX_PEER_TABLE = 2 ** 22;

/**
 * Every worker listens on the public port itself, with SO_REUSEPORT, and accepts on its own: the
 * main thread does nothing per connection. The listeners are made here and lent to the workers; one
 * is never closed while a worker lives, but moved (to the successor, or back here, where the main
 * thread accepts on it until a worker can hold it), so that no connection in its queue is lost.
 * Connections the main thread accepts meanwhile, and those of the app's other servers, are handed off.
 */
export class ReuseportIntake implements Intake {
  readonly sharedCounts: SharedCounts;

  readonly #settings: ReuseportSettings;
  /** The public server's, read once it is bound (the launcher may bind it after the workers start). */
  #address: net.AddressInfo | undefined;
  /** Listeners no worker holds: the main thread accepts on them meanwhile. */
  readonly #bank: net.Server[] = [];
  readonly #members = new Map<number, Member>();
  /**
   * Taken first in, first out: an index freed last is reused last, so that a worker that has not yet
   * heard another is gone cannot take that one's successor for it.
   */
  readonly #freeIndexes: number[];
  /** Indexes given at boot to workers not yet serving. */
  readonly #pendingIndexes = new Map<number, number>();
  #opening = 0;
  #stopped = false;

  private constructor(reuseport: ReuseportSettings, counts: SharedCounts) {
    this.#settings = reuseport;
    this.sharedCounts = counts;
    this.#freeIndexes = Array.from({ length: counts.layout.workers }, (_, i) => i);
    this.#bank.push(reuseport.server);
  }

  /**
   * The transport, once a second listener has joined the public server's port: that shows the
   * server listens with SO_REUSEPORT. Rejects with the reason when it cannot.
   */
  static async open(reuseport: ReuseportSettings): Promise<ReuseportIntake> {
    const limits = reuseport.limits();
    // Each connection a worker accepts is one descriptor of the process.
    const budget = connectionBudget(1, reuseport.maxWorkers) ?? 0;
    const peers = limits.maxConnectionsPerIp === 0 ? 0 : peerTableSize(Math.max(limits.maxConnections, budget));
    const counts = new SharedCounts({ workers: 4 * reuseport.maxWorkers + 4, peers });
    const intake = new ReuseportIntake(reuseport, counts);
    // A server not bound yet, the launcher binds later, with reusePort: nothing to join now.
    if (reuseport.server.listening) await intake.#openListener();
    return intake;
  }

  get #portOpen(): boolean {
    return this.#bank.length > 0 || [...this.#members.values()].some((member) => member.listeners > 0);
  }

  ownCounters(): OwnCounters {
    return {
      accepted: this.sharedCounts.count('accepted'),
      refused: this.sharedCounts.count('refused'),
      forwarded: this.sharedCounts.count('forwarded'),
    };
  }

  workerBoot(id: number, slot: number): ReuseportBoot {
    const index = this.#freeIndexes.shift();
    if (index === undefined) throw new ERR_WORKER_START('no place is left in the shared connection counts');
    this.sharedCounts.startWorker(index);
    const { balance, trusted } = this.#settings;
    const limits = this.#settings.limits();
    this.#pendingIndexes.set(id, index);
    return {
      counts: this.sharedCounts.buffer,
      layout: this.sharedCounts.layout,
      index,
      slot,
      maxConnections: limits.maxConnections,
      maxConnectionsPerIp: limits.maxConnectionsPerIp,
      ipv6PrefixBits: limits.perIpPrefix,
      balance,
      trusted,
    };
  }

  add(target: DispatchTarget): void {
    const member = this.#memberOf(target);
    if (!member || this.#stopped) return;
    if (!member.meshed) this.#mesh(member);
    this.sharedCounts.setState(member.index, ACCEPTING);
    this.#lendBank();
    if (member.listeners > 0 || this.#bank.length > 0) return;
    // One that holds two gives one up; otherwise there is one more listener in the group.
    const richest = [...this.#members.values()].reduce((most, candidate) =>
      candidate.listeners > most.listeners ? candidate : most,
    );
    if (richest.listeners > 1) this.#post(richest, { type: 'return-listeners', count: 1 });
    else if (this.#listenerCount() + this.#opening < this.#serving().length) {
      void this.#openListener().then(
        () => this.#lendBank(),
        (err: unknown) =>
          this.#settings.log.warn(`Could not open another listener on the public port: ${(err as Error).message}`),
      );
    }
  }

  /** The connections worker `target` accepted, or was moved, itself: open now, and since it started. */
  ownConnections(target: DispatchTarget): OwnConnections | undefined {
    const member = this.#memberOf(target);
    if (!member) return undefined;
    const counts = this.sharedCounts;
    return { open: () => counts.heldBy(member.index), total: () => counts.totalOf(member.index) };
  }

  rest(target: DispatchTarget, retiring: boolean): void {
    const member = this.#memberOf(target);
    if (!member) return;
    this.sharedCounts.setState(member.index, RESTING);
    if (retiring && !this.#stopped && member.listeners > 0) this.#post(member, { type: 'return-listeners' });
  }

  listenerReturned(target: DispatchTarget, server: net.Server): void {
    const member = this.#members.get(target.id);
    if (member) member.listeners--;
    this.#bankListener(server);
    this.#lendBank();
  }

  remove(target: DispatchTarget): void {
    const member = this.#memberOf(target);
    if (!member) return;
    this.#members.delete(target.id);
    this.sharedCounts.workerExited(member.index);
    this.#freeIndexes.push(member.index);
    for (const other of this.#members.values()) this.#post(other, { type: 'peer-gone', index: member.index });
    // Its listeners closed with it; while no worker can hold one, the port stays open here.
    if (!this.#stopped && !this.#portOpen && this.#opening === 0) {
      void this.#openListener().then(
        () => this.#lendBank(),
        (err: unknown) => this.#settings.log.error(`The public port has no listener: ${(err as Error).message}`),
      );
    }
  }

  stopAccepting(): void {
    this.#stopped = true;
    for (const server of this.#bank.splice(0)) server.close();
    for (const member of this.#members.values())
      if (member.listeners > 0) this.#post(member, { type: 'close-listeners' });
  }

  #memberOf(target: DispatchTarget): Member | undefined {
    const known = this.#members.get(target.id);
    if (known) return known;
    const index = this.#pendingIndexes.get(target.id);
    if (index === undefined) return undefined;
    this.#pendingIndexes.delete(target.id);
    const member: Member = { target, index, listeners: 0, meshed: false };
    this.#members.set(target.id, member);
    return member;
  }

  #serving(): Member[] {
    return [...this.#members.values()].filter((member) => this.sharedCounts.stateOf(member.index) === ACCEPTING);
  }

  #listenerCount(): number {
    let count = this.#bank.length;
    for (const member of this.#members.values()) count += member.listeners;
    return count;
  }

  /** Channels between the worker and every other one, for moving connections thread to thread. */
  #mesh(member: Member): void {
    member.meshed = true;
    for (const other of this.#members.values()) {
      if (other === member || !other.meshed) continue;
      const { port1, port2 } = new MessageChannel();
      this.#post(member, { type: 'peer', index: other.index, slot: other.target.slot, port: port1 }, [port1 as never]);
      this.#post(other, { type: 'peer', index: member.index, slot: member.target.slot, port: port2 }, [port2 as never]);
    }
  }

  /** Gives every listener held here to the serving workers, those holding fewest first. */
  #lendBank(): void {
    if (this.#stopped) return;
    while (this.#bank.length > 0) {
      const serving = this.#serving();
      if (serving.length === 0) return;
      const member = serving.reduce((least, candidate) => (candidate.listeners < least.listeners ? candidate : least));
      const server = this.#bank.pop()!;
      // Read while its socket is here: a server whose socket moved knows no address.
      if (server === this.#settings.server) this.#publicAddress();
      server.removeListener('connection', this.#settings.accept);
      server.removeListener('error', this.#onBankError);
      try {
        member.target.port.postMessage({ type: 'lend-listener', server } satisfies ToWorker, [server as never]);
        member.listeners++;
        if (server === this.#settings.server) this.#keepServerFace(server);
      } catch (err) {
        this.#settings.log.warn(`Could not move a listener to worker ${member.target.id}: ${(err as Error).message}`);
        this.#bankListener(server);
        return;
      }
    }
  }

  /**
   * The server given to the proxy lends its socket to a worker; the object stays with its owner, who
   * may still ask where it listens and whether it does, as with any server.
   */
  #keepServerFace(server: net.Server): void {
    const address = this.#publicAddress();
    answerAsListening(server, () => (this.#portOpen ? address : null));
  }

  #bankListener(server: net.Server): void {
    if (this.#stopped) {
      server.close();
      return;
    }
    (server as net.Server & { pauseOnConnect: boolean }).pauseOnConnect = true;
    server.on('connection', this.#settings.accept);
    server.on('error', this.#onBankError);
    this.#bank.push(server);
  }

  readonly #onBankError = (err: NodeJS.ErrnoException): void => {
    if (err.syscall === 'accept') this.#settings.acceptFailed(err);
    else this.#settings.log.warn(`A listener of the public port failed: ${err.message}`);
  };

  async #openListener(): Promise<void> {
    this.#opening++;
    const server = net.createServer({ pauseOnConnect: true });
    try {
      const { address, port } = this.#publicAddress();
      server.listen({ host: address, port, reusePort: true, ipv6Only: this.#settings.ipv6Only() });
      await once(server, 'listening');
    } finally {
      this.#opening--;
    }
    this.#bankListener(server);
  }

  #publicAddress(): net.AddressInfo {
    this.#address ??= this.#settings.server.address() as net.AddressInfo;
    return this.#address;
  }

  #post(member: Member, message: ToWorker, transfer?: never[]): void {
    try {
      member.target.port.postMessage(message, transfer);
    } catch {
      // The worker is gone; its exit is on its way.
    }
  }
}

function peerTableSize(maxConnections: number): number {
  let size = MIN_PEER_TABLE;
  while (size < PEER_TABLE_LOAD * maxConnections && size < MAX_PEER_TABLE) size *= 2;
  return size;
}
