// The open-connection counts of the reuseport transport, in memory every thread shares: workers
// accept on their own, so the limits must hold across threads without asking the main thread.
// Totals are atomic cells; the per-peer counts are two open-addressing tables under one lock, one
// by peer (for admission) and one by peer and holder (so that a dead worker's share can be undone).

import type { AdmissionLimits, LimitName } from '../../limits.ts';

export interface SharedCountsLayout {
  /** Worker indexes there may be at once, retiring workers included. */
  workers: number;
  /** Entries of each peer table, a power of 2; 0 when no per-peer limit applies. */
  peers: number;
}

/** A worker index's state, as other workers read it before moving a connection to it. */
export const GONE = 0;
export const ACCEPTING = 1;
/** Alive and holding connections, but not to be given more: stalled, or retiring. */
export const RESTING = 2;

const LOCK = 0;
const OPEN = 1;
const HEADER = 2;
const COUNTER_NAMES = ['accepted', 'refused', 'forwarded'] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];
const LOCK_SPINS = 64;

/** A 64-bit FNV-1a hash of `key`, as two 32-bit halves, never both 0 (the empty key). */
function hashKey(key: string): [number, number] {
  let lo = 0x84222325;
  let hi = 0xcbf29ce4;
  for (let i = 0; i < key.length; i++) {
    lo ^= key.charCodeAt(i);
    // Multiplying by the 64-bit FNV prime, 2^40 + 0x1b3, in 32-bit halves.
    const low = lo >>> 0;
    const product = low * 0x1b3;
    hi = (Math.imul(hi, 0x1b3) + Math.imul(low, 0x100) + Math.floor(product / 0x1_0000_0000)) | 0;
    lo = product | 0;
  }
  return lo === 0 && hi === 0 ? [1, 0] : [lo, hi];
}

export class SharedCounts {
  readonly buffer: SharedArrayBuffer;
  readonly layout: SharedCountsLayout;
  readonly #cells: Int32Array;
  readonly #counters: BigInt64Array;
  /** Per worker index: open connections held, connections held since it started, and its state. */
  readonly #held: Int32Array;
  readonly #total: Int32Array;
  readonly #state: Int32Array;
  /** Peer table: [lo, hi] keys and counts. */
  readonly #peerKeys: Int32Array;
  readonly #peerCounts: Int32Array;
  /** Holder table: [lo, hi, holder + 1] keys and counts. */
  readonly #holderKeys: Int32Array;
  readonly #holderCounts: Int32Array;

  /** New counts with `layout`, or the view of `buffer` another thread made. */
  constructor(layout: SharedCountsLayout, buffer?: SharedArrayBuffer) {
    const { workers, peers } = layout;
    const int32s = HEADER + 3 * workers + peers * 3 + peers * 4;
    this.layout = layout;
    this.buffer = buffer ?? new SharedArrayBuffer(COUNTER_NAMES.length * 8 + int32s * 4);
    this.#counters = new BigInt64Array(this.buffer, 0, COUNTER_NAMES.length);
    let at = COUNTER_NAMES.length * 8;
    const int32 = (length: number): Int32Array => {
      const view = new Int32Array(this.buffer, at, length);
      at += length * 4;
      return view;
    };
    this.#cells = int32(HEADER);
    this.#held = int32(workers);
    this.#total = int32(workers);
    this.#state = int32(workers);
    this.#peerKeys = int32(peers * 2);
    this.#peerCounts = int32(peers);
    this.#holderKeys = int32(peers * 3);
    this.#holderCounts = int32(peers);
  }

  get open(): number {
    return Atomics.load(this.#cells, OPEN);
  }

  count(name: CounterName): number {
    return Number(Atomics.load(this.#counters, COUNTER_NAMES.indexOf(name)));
  }

  add(name: CounterName, count: number): void {
    Atomics.add(this.#counters, COUNTER_NAMES.indexOf(name), BigInt(count));
  }

  heldBy(worker: number): number {
    return Atomics.load(this.#held, worker);
  }

  totalOf(worker: number): number {
    return Atomics.load(this.#total, worker);
  }

  /** A new worker takes index `worker`, alive and not yet to be given connections. */
  startWorker(worker: number): void {
    Atomics.store(this.#total, worker, 0);
    Atomics.store(this.#state, worker, RESTING);
  }

  stateOf(worker: number): number {
    return Atomics.load(this.#state, worker);
  }

  setState(worker: number, state: number): void {
    Atomics.store(this.#state, worker, state);
  }

  openFrom(peer: string): number {
    if (this.layout.peers === 0 || peer === '') return 0;
    return this.#locked(() => {
      const slot = this.#find(this.#peerKeys, 2, hashKey(peer), undefined);
      return slot === -1 ? 0 : this.#peerCounts[slot]!;
    });
  }

  /** Counts a new connection in, or returns the limit it would break. `peer` '' is counted only in the total. */
  admit(peer: string, limits: AdmissionLimits): LimitName | undefined {
    const total = Atomics.add(this.#cells, OPEN, 1);
    if (limits.maxConnections > 0 && total >= limits.maxConnections) {
      Atomics.sub(this.#cells, OPEN, 1);
      return 'maxConnections';
    }
    if (limits.maxConnectionsPerIp === 0 || peer === '') return undefined;
    const refused = this.#locked(() => {
      const slot = this.#findOrAdd(this.#peerKeys, 2, hashKey(peer), undefined);
      if (slot === -1 || this.#peerCounts[slot]! >= limits.maxConnectionsPerIp) {
        if (slot !== -1 && this.#peerCounts[slot] === 0) this.#remove(this.#peerKeys, this.#peerCounts, 2, slot);
        return true;
      }
      this.#peerCounts[slot]!++;
      return false;
    });
    if (!refused) return undefined;
    Atomics.sub(this.#cells, OPEN, 1);
    return 'maxConnectionsPerIp';
  }

  /** A connection admitted and held by no worker here ended. */
  release(peer: string): void {
    Atomics.sub(this.#cells, OPEN, 1);
    if (this.layout.peers === 0 || peer === '') return;
    this.#locked(() => this.#decrement(this.#peerKeys, this.#peerCounts, 2, hashKey(peer), undefined));
  }

  /** This worker, `holder`, holds a connection it admitted. */
  holdOwn(holder: number, peer: string): void {
    if (this.layout.peers === 0 || peer === '') {
      Atomics.add(this.#held, holder, 1);
      Atomics.add(this.#total, holder, 1);
      return;
    }
    this.#locked(() => this.#addHeld(holder, peer));
  }

  /** Worker `holder` is about to be given an admitted connection; false when it is gone, and holds nothing. */
  holdFor(holder: number, peer: string): boolean {
    return this.#locked(() => {
      if (Atomics.load(this.#state, holder) === GONE) return false;
      this.#addHeld(holder, peer);
      return true;
    });
  }

  #addHeld(holder: number, peer: string): void {
    Atomics.add(this.#held, holder, 1);
    Atomics.add(this.#total, holder, 1);
    if (this.layout.peers === 0 || peer === '') return;
    const slot = this.#findOrAdd(this.#holderKeys, 3, hashKey(peer), holder);
    if (slot !== -1) this.#holderCounts[slot]!++;
  }

  /** A connection worker `holder` held ended: counted out of its share and of the totals. */
  ended(holder: number, peer: string): void {
    this.unhold(holder, peer);
    this.release(peer);
  }

  /** Worker `holder` no longer holds the connection, which stays admitted. */
  unhold(holder: number, peer: string, given = true): void {
    if (!given) Atomics.sub(this.#total, holder, 1);
    if (this.layout.peers === 0 || peer === '') {
      Atomics.sub(this.#held, holder, 1);
      return;
    }
    this.#locked(() => {
      Atomics.sub(this.#held, holder, 1);
      this.#decrement(this.#holderKeys, this.#holderCounts, 3, hashKey(peer), holder);
    });
  }

  /** Worker `holder` is gone, with every connection it held: counts them out. Then its index may be reused. */
  workerExited(holder: number): void {
    this.#locked(() => {
      Atomics.store(this.#state, holder, GONE);
      Atomics.sub(this.#cells, OPEN, Atomics.exchange(this.#held, holder, 0));
      const keys = this.#holderKeys;
      const mine: [number, number, number][] = [];
      for (let slot = 0; slot < this.layout.peers; slot++) {
        if (keys[slot * 3 + 2] === holder + 1)
          mine.push([keys[slot * 3]!, keys[slot * 3 + 1]!, this.#holderCounts[slot]!]);
      }
      for (const [lo, hi, count] of mine) {
        const slot = this.#find(keys, 3, [lo, hi], holder);
        this.#remove(keys, this.#holderCounts, 3, slot);
        const peerSlot = this.#find(this.#peerKeys, 2, [lo, hi], undefined);
        if (peerSlot === -1) continue;
        this.#peerCounts[peerSlot]! -= count;
        if (this.#peerCounts[peerSlot]! <= 0) this.#remove(this.#peerKeys, this.#peerCounts, 2, peerSlot);
      }
    });
  }

  #locked<T>(section: () => T): T {
    const cells = this.#cells;
    for (let spins = 0; Atomics.compareExchange(cells, LOCK, 0, 1) !== 0; spins++) {
      if (spins >= LOCK_SPINS) Atomics.wait(cells, LOCK, 1, 1);
    }
    try {
      return section();
    } finally {
      Atomics.store(cells, LOCK, 0);
      Atomics.notify(cells, LOCK, 1);
    }
  }

  // Linear probing. A table's entry is `width` Int32s: the key's halves, and for the holder table the
  // holder + 1. An entry of all zeros is empty.
  #home(key: [number, number], holder: number | undefined): number {
    const mixed = Math.imul(
      key[0] ^ Math.imul(key[1], 0x9e3779b1) ^ Math.imul((holder ?? -1) + 1, 0x85ebca6b),
      0xc2b2ae35,
    );
    return (mixed >>> 0) & (this.layout.peers - 1);
  }

  #matches(keys: Int32Array, width: number, slot: number, key: [number, number], holder: number | undefined): boolean {
    const at = slot * width;
    return keys[at] === key[0] && keys[at + 1] === key[1] && (width === 2 || keys[at + 2] === holder! + 1);
  }

  #empty(keys: Int32Array, width: number, slot: number): boolean {
    return keys[slot * width] === 0 && keys[slot * width + 1] === 0;
  }

  #find(keys: Int32Array, width: number, key: [number, number], holder: number | undefined): number {
    const size = this.layout.peers;
    for (let i = 0, slot = this.#home(key, holder); i < size; i++, slot = (slot + 1) & (size - 1)) {
      if (this.#empty(keys, width, slot)) return -1;
      if (this.#matches(keys, width, slot, key, holder)) return slot;
    }
    return -1;
  }

  #findOrAdd(keys: Int32Array, width: number, key: [number, number], holder: number | undefined): number {
    const size = this.layout.peers;
    for (let i = 0, slot = this.#home(key, holder); i < size; i++, slot = (slot + 1) & (size - 1)) {
      if (this.#matches(keys, width, slot, key, holder)) return slot;
      if (!this.#empty(keys, width, slot)) continue;
      keys[slot * width] = key[0];
      keys[slot * width + 1] = key[1];
      if (width === 3) keys[slot * width + 2] = holder! + 1;
      return slot;
    }
    return -1;
  }

  #decrement(
    keys: Int32Array,
    counts: Int32Array,
    width: number,
    key: [number, number],
    holder: number | undefined,
  ): void {
    const slot = this.#find(keys, width, key, holder);
    if (slot === -1) return;
    if (--counts[slot]! <= 0) this.#remove(keys, counts, width, slot);
  }

  /** Empties `slot`, moving back the entries after it that probing would no longer reach. */
  #remove(keys: Int32Array, counts: Int32Array, width: number, slot: number): void {
    const size = this.layout.peers;
    let hole = slot;
    for (let next = (hole + 1) & (size - 1); !this.#empty(keys, width, next); next = (next + 1) & (size - 1)) {
      const at = next * width;
      const home = this.#home([keys[at]!, keys[at + 1]!], width === 3 ? keys[at + 2]! - 1 : undefined);
      // The entry at `next` may fill the hole if its home is not within (hole, next], cyclically.
      const reachable = hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (reachable) continue;
      keys.copyWithin(hole * width, at, at + width);
      counts[hole] = counts[next]!;
      hole = next;
    }
    keys.fill(0, hole * width, hole * width + width);
    counts[hole] = 0;
  }
}
