import type net from 'node:net';
import type { MessagePort } from 'node:worker_threads';
import { pickByKey } from '../../balancers/ip-hash.ts';
import { clientKey, isTrusted } from '../../protocol/address-info.ts';
import { exhaustive } from '../../exhaustive.ts';
import type { ReuseportBoot, WorkerBootData } from '../../protocol/messages.ts';
import { readPrefix } from '../../protocol/read-prefix.ts';
import { parseProxyHeader } from '../../proxy-protocol/parser.ts';
import { adoptMovedSocket } from '../handoff/adopt-socket.ts';
import { giveBack, handoffWorker } from '../handoff/worker.ts';
import type { ConnectionSink, TransportMessage, WorkerTransportFactory } from '../worker-transport.ts';
import { ACCEPTING, SharedCounts, type CounterName } from './shared-counts.ts';

const LOAD_SAMPLE_MS = 100;
const BUSY_UTILIZATION = 0.9;

interface Peer {
  readonly slot: number;
  readonly port: MessagePort;
}

/** A connection moved here by another worker, admitted and counted as this worker's already. */
interface Moved {
  socket: net.Socket;
  peer: string;
}

/** The worker's end of reuseport: accepts on the listeners lent to it, and on what other workers move here. */
export const reuseportWorker: WorkerTransportFactory = (context, sink) => {
  // The main thread hands off what it accepts while no worker holds a listener, and the
  // connections of the app's other servers.
  const handoff = handoffWorker(context, sink);
  let acceptor: Acceptor | undefined;
  return {
    async start() {
      acceptor = new Acceptor(context, context.reuseport!, sink);
    },
    receive(message) {
      if (message.type === 'connection') handoff.receive(message);
      else acceptor?.receive(message);
    },
  };
};

type ReuseportMessage = Exclude<TransportMessage, { type: 'connection' }>;

class Acceptor {
  readonly #context: WorkerBootData;
  readonly #boot: ReuseportBoot;
  readonly #counts: SharedCounts;
  readonly #sink: () => ConnectionSink;
  readonly #listeners = new Set<net.Server>();
  readonly #peers = new Map<number, Peer>();
  readonly #trusted: net.BlockList | undefined;
  /** Counted here and added to the shared counters once per turn of the loop, not once per connection. */
  readonly #unflushed: Record<CounterName, number> = { accepted: 0, refused: 0, forwarded: 0 };
  #flushing = false;
  /** This worker's event loop was nearly always busy lately: then even a small excess of connections moves. */
  #busy = false;

  constructor(context: WorkerBootData, boot: ReuseportBoot, sink: () => ConnectionSink) {
    this.#context = context;
    this.#boot = boot;
    this.#counts = new SharedCounts(boot.layout, boot.counts);
    this.#sink = sink;
    this.#trusted = boot.trusted;
    let last = performance.eventLoopUtilization();
    setInterval(() => {
      const now = performance.eventLoopUtilization();
      this.#busy = performance.eventLoopUtilization(now, last).utilization >= BUSY_UTILIZATION;
      last = now;
    }, LOAD_SAMPLE_MS).unref();
  }

  receive(message: ReuseportMessage): void {
    switch (message.type) {
      case 'lend-listener':
        this.#adopt(message.server);
        break;
      case 'return-listeners':
        for (const server of [...this.#listeners].slice(0, message.count)) {
          server.removeAllListeners('connection');
          this.#listeners.delete(server);
          this.#context.port.postMessage({ type: 'listener-returned', server }, [server as never]);
        }
        break;
      case 'close-listeners':
        for (const server of this.#listeners) server.close();
        this.#listeners.clear();
        break;
      case 'peer':
        this.#peers.set(message.index, { slot: message.slot, port: message.port });
        message.port.on('message', (moved: Moved) => this.#keep(adoptMovedSocket(moved.socket), moved.peer));
        // Whether the worker may end is the proxy's to say, not these channels'.
        message.port.unref();
        break;
      case 'peer-gone':
        this.#peers.get(message.index)?.port.close();
        this.#peers.delete(message.index);
        break;
      default:
        exhaustive(message);
    }
  }

  #adopt(server: net.Server): void {
    (server as net.Server & { pauseOnConnect: boolean }).pauseOnConnect = true;
    server.on('connection', this.#onConnection);
    // Accepting failed (out of descriptors, say): libuv has shed the connection and goes on.
    server.on('error', () => {});
    this.#listeners.add(server);
  }

  #count(name: CounterName): void {
    this.#unflushed[name]++;
    if (this.#flushing) return;
    this.#flushing = true;
    setImmediate(() => {
      this.#flushing = false;
      for (const [counter, count] of Object.entries(this.#unflushed) as [CounterName, number][]) {
        if (count === 0) continue;
        this.#counts.add(counter, count);
        this.#unflushed[counter] = 0;
      }
    });
  }

  readonly #onConnection = (socket: net.Socket): void => {
    const counts = this.#counts;
    const { maxConnections, maxConnectionsPerIp, ipv6PrefixBits } = this.#boot;
    this.#count('accepted');
    const peer = maxConnectionsPerIp > 0 ? clientKey(socket.remoteAddress ?? '', ipv6PrefixBits) : '';
    if (counts.admit(peer, { maxConnections, maxConnectionsPerIp })) {
      this.#count('refused');
      socket.destroy();
      return;
    }
    const target = this.#proxyHeaderUntrusted(socket) ? undefined : this.#target(socket);
    if (target && counts.holdFor(target.index, peer)) {
      try {
        target.peer.port.postMessage({ socket, peer } satisfies Moved, [socket as never]);
        this.#count('forwarded');
        return;
      } catch {
        counts.unhold(target.index, peer, false);
      }
    }
    counts.holdOwn(this.#boot.index, peer);
    this.#keep(socket, peer);
  };

  /**
   * Serves a connection held in this worker's name, counting it out when it closes; or, once its app
   * closed its server, gives it back unread to the main thread, still admitted, for another worker.
   */
  #keep(socket: net.Socket, peer: string): void {
    const agent = this.#sink();
    if (!agent.takes()) {
      this.#counts.unhold(this.#boot.index, peer, false);
      if (giveBack(this.#context, socket, undefined, true)) return;
      this.#counts.holdOwn(this.#boot.index, peer);
    }
    socket.once('close', () => this.#counts.ended(this.#boot.index, peer));
    // Accepted paused, so that it could still move, it must start like any socket a server accepts.
    (socket as { readableFlowing: boolean | null }).readableFlowing = null;
    const timeout = this.#context.proxyHeaderTimeout;
    if (timeout === undefined) {
      agent.acceptOwn(socket, undefined);
      return;
    }
    if (this.#proxyHeaderUntrusted(socket)) {
      agent.rejectOwn(socket, 'PROXY header from an untrusted address');
      return;
    }
    readPrefix(socket, parseProxyHeader, timeout, (outcome) => {
      if (outcome.status === 'ok') agent.acceptOwn(socket, outcome.info);
      else agent.rejectOwn(socket, outcome.reason);
    });
  }

  #proxyHeaderUntrusted(socket: net.Socket): boolean {
    if (this.#context.proxyHeaderTimeout === undefined || !this.#trusted) return false;
    return !isTrusted(this.#trusted, socket.remoteAddress);
  }

  /**
   * The worker to move the connection to, if not this one: its client's, under ip-hash; otherwise the
   * worker with fewest connections, where this one is clearly busier: 2 more while its own loop is
   * saturated, else more than twice as many and 4. Read from the shared counts.
   */
  #target(socket: net.Socket): { index: number; peer: Peer } | undefined {
    const counts = this.#counts;
    const me = this.#boot.index;
    const balance = this.#boot.balance;
    if (balance === 'round-robin' || this.#peers.size === 0) return undefined;
    // A trusted reverse proxy's connection carries many clients, whose requests are routed one by one.
    const trustProxy = this.#context.trustProxy;
    const fromProxy = trustProxy !== undefined && isTrusted(trustProxy, socket.remoteAddress);
    if (balance === 'ip-hash' && !fromProxy) {
      const accepting = [...this.#peers].filter(([index]) => counts.stateOf(index) === ACCEPTING);
      // A PROXY header, read only by the worker that serves, cannot name the client here.
      const key = clientKey(socket.remoteAddress ?? '', this.#boot.ipv6PrefixBits);
      const candidates = [
        { id: me, slot: this.#boot.slot, connections: 0 },
        ...accepting.map(([index, peer]) => ({ id: index, slot: peer.slot, connections: 0 })),
      ];
      const picked = pickByKey(candidates, key);
      return picked && picked.id !== me ? { index: picked.id, peer: this.#peers.get(picked.id)! } : undefined;
    }
    let least: number | undefined;
    let leastHeld = Infinity;
    for (const index of this.#peers.keys()) {
      if (counts.stateOf(index) !== ACCEPTING) continue;
      const held = counts.heldBy(index);
      if (held < leastHeld) [least, leastHeld] = [index, held];
    }
    // Moving a socket costs both threads some work: worth it when this worker's loop is saturated, or
    // when it holds far more than another; not for the ups and downs of short connections.
    const mine = counts.heldBy(me);
    const excess = this.#busy ? 1 : leastHeld + 4;
    return least !== undefined && mine > leastHeld + excess
      ? { index: least, peer: this.#peers.get(least)! }
      : undefined;
  }
}
