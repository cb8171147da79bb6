// A client that has just been given an Engine.IO session opens its next connections (the upgrade to
// WebSocket, a second long-polling connection) for that session. Sent to the worker that issued it,
// they need no relay through another worker. The main thread cannot read a connection to see its
// session id (a socket that has been read cannot move), so it goes by the client's address; an
// address that has set up more than one session lately (clients behind one NAT or proxy) is not
// followed, and a session is followed by a few connections at most, so that one address cannot pull
// everyone's new sessions to one worker.
import { canonicalAddress } from '../protocol/address-info.ts';

/** How long after a session is issued its client's new connections follow it. */
export const SESSION_AFFINITY_MS = 10_000;
/**
 * How many: a browser's client opens two (a second long-polling connection while one long-polls, and
 * the WebSocket), the rest keep-alive.
 */
export const SESSION_AFFINITY_CONNECTIONS = 4;

interface Issued {
  worker: number;
  at: number;
  /** Sessions issued to this address within SESSION_AFFINITY_MS of one another. */
  sessions: number;
  /** Connections sent to `worker` since. */
  followed: number;
}

export class SessionAffinity {
  /** Oldest first: each entry is moved to the end when it is issued again. */
  readonly #byAddress = new Map<string, Issued>();
  readonly #now: () => number;

  constructor(now: () => number = performance.now.bind(performance)) {
    this.#now = now;
  }

  get size(): number {
    return this.#byAddress.size;
  }

  /** Worker `worker` issued a session to a client at `address`. */
  issued(address: string, worker: number): void {
    const key = canonicalAddress(address);
    const at = this.#now();
    const last = this.#byAddress.get(key);
    const sessions = last && at - last.at < SESSION_AFFINITY_MS ? last.sessions + 1 : 1;
    this.#byAddress.delete(key);
    this.#byAddress.set(key, { worker, at, sessions, followed: 0 });
    for (const [oldest, entry] of this.#byAddress) {
      if (at - entry.at < SESSION_AFFINITY_MS) break;
      this.#byAddress.delete(oldest);
    }
  }

  /** The worker a new connection from `address` goes to, if any: the connection is counted as sent there. */
  follow(address: string | undefined): number | undefined {
    if (this.#byAddress.size === 0 || address === undefined) return undefined;
    const entry = this.#byAddress.get(canonicalAddress(address));
    if (!entry || entry.sessions > 1 || entry.followed >= SESSION_AFFINITY_CONNECTIONS) return undefined;
    if (this.#now() - entry.at >= SESSION_AFFINITY_MS) return undefined;
    entry.followed++;
    return entry.worker;
  }
}
