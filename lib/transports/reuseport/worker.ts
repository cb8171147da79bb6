import net from 'node:net';
import type { MessagePort } from 'node:worker_threads';
import { pickByKey } from '../../balancers/ip-hash.ts';
import { clientKey, type ProxySocketAddressInfo } from '../../protocol/address-info.ts';
import type { ReuseportBoot, ToWorker, WorkerBootData } from '../../protocol/messages.ts';
import { readPrefix } from '../../protocol/read-prefix.ts';
import { parseProxyHeader } from '../../proxy-protocol/parser.ts';
import { adoptMovedSocket } from '../handoff/adopt-socket.ts';
import { handoffWorker } from '../handoff/worker.ts';
import type { WorkerTransport } from '../worker-transport.ts';
import { ACCEPTING, SharedCounts } from './shared-counts.ts';

/** The agent, as this transport feeds it the connections this worker accepts or is moved. */
interface OwnConnectionSink {
  acceptOwn(socket: net.Socket, info: ProxySocketAddressInfo | undefined): void;
  rejectOwn(socket: net.Socket, reason: string): void;
}

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
export const reuseportWorker: WorkerTransport = {
  async start(context, sink) {
    // The main thread hands off what it accepts while no worker holds a listener, and the
    // connections of the app's other servers.
    await handoffWorker.start(context, sink);
    const acceptor = new Acceptor(context, context.reuseport!, () => sink() as unknown as OwnConnectionSink);
    context.port.on('message', (message: ToWorker) => acceptor.onMessage(message));
  },
};

class Acceptor {
  readonly #context: WorkerBootData;
  readonly #boot: ReuseportBoot;
  readonly #counts: SharedCounts;
  readonly #sink: () => OwnConnectionSink;
  readonly #listeners = new Set<net.Server>();
  readonly #peers = new Map<number, Peer>();
  readonly #trusted: net.BlockList | undefined;

  constructor(context: WorkerBootData, boot: ReuseportBoot, sink: () => OwnConnectionSink) {
    this.#context = context;
    this.#boot = boot;
    this.#counts = new SharedCounts(boot.layout, boot.counts);
    this.#sink = sink;
    this.#trusted = boot.trusted;
  }

  onMessage(message: ToWorker): void {
    switch (message.type) {
      case 'listener':
        this.#adopt(message.server);
        break;
      case 'return-listeners':
        for (const server of [...this.#listeners].slice(0, message.count)) {
          server.removeAllListeners('connection');
          this.#listeners.delete(server);
          this.#context.port.postMessage({ type: 'listener', server }, [server as never]);
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
    }
  }

  #adopt(server: net.Server): void {
    (server as net.Server & { pauseOnConnect: boolean }).pauseOnConnect = true;
    server.on('connection', this.#onConnection);
    // Accepting failed (out of descriptors, say): libuv has shed the connection and goes on.
    server.on('error', () => {});
    this.#listeners.add(server);
  }

  readonly #onConnection = (socket: net.Socket): void => {
    const counts = this.#counts;
    const { maxConnections, maxConnectionsPerIp, ipv6PrefixBits } = this.#boot;
    counts.bump('accepted');
    const peer = maxConnectionsPerIp > 0 ? clientKey(socket.remoteAddress ?? '', ipv6PrefixBits) : '';
    if (counts.admit(peer, { maxConnections, maxConnectionsPerIp })) {
      counts.bump('refused');
      socket.destroy();
      return;
    }
    const target = this.#proxyHeaderUntrusted(socket) ? undefined : this.#target(socket);
    if (target && counts.holdFor(target.index, peer)) {
      try {
        target.peer.port.postMessage({ socket, peer } satisfies Moved, [socket as never]);
        counts.bump('forwarded');
        return;
      } catch {
        counts.unhold(target.index, peer, false);
      }
    }
    counts.holdOwn(this.#boot.index, peer);
    this.#keep(socket, peer);
  };

  /** Serves a connection held in this worker's name, counting it out when it closes. */
  #keep(socket: net.Socket, peer: string): void {
    socket.once('close', () => this.#counts.ended(this.#boot.index, peer));
    // Accepted paused, so that it could still move, it must start like any socket a server accepts.
    (socket as { readableFlowing: boolean | null }).readableFlowing = null;
    const agent = this.#sink();
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
    const address = socket.remoteAddress ?? '';
    return !this.#trusted.check(address, net.isIPv6(address) ? 'ipv6' : 'ipv4');
  }

  /**
   * The worker to move the connection to, if not this one: its client's, under ip-hash; otherwise the
   * worker with fewest connections, where this one is clearly busier. Read from the shared counts.
   */
  #target(socket: net.Socket): { index: number; peer: Peer } | undefined {
    const counts = this.#counts;
    const me = this.#boot.index;
    const accepting = [...this.#peers].filter(([index]) => counts.stateOf(index) === ACCEPTING);
    if (accepting.length === 0) return undefined;
    const balance = this.#boot.balance;
    if (balance === 'round-robin') return undefined;
    if (balance === 'ip-hash') {
      // A PROXY header, read only by the worker that serves, cannot name the client here.
      const key = clientKey(socket.remoteAddress ?? '', this.#boot.ipv6PrefixBits);
      const candidates = [{ id: me, slot: this.#boot.slot, connections: 0 }, ...accepting.map(([index, peer]) => ({ id: index, slot: peer.slot, connections: 0 }))];
      const picked = pickByKey(candidates, key);
      return picked && picked.id !== me ? { index: picked.id, peer: this.#peers.get(picked.id)! } : undefined;
    }
    let least: [number, Peer] | undefined;
    let leastHeld = Infinity;
    for (const entry of accepting) {
      const held = counts.heldBy(entry[0]);
      if (held < leastHeld) [least, leastHeld] = [entry, held];
    }
    const mine = counts.heldBy(me);
    return least && mine > leastHeld + Math.max(1, leastHeld >> 2) ? { index: least[0], peer: least[1] } : undefined;
  }
}
