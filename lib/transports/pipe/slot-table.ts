// Up to 2^21 entries at once, each slot reused up to 2^31 times before its ids repeat: ids stay
// below 2^52, safe integers that pass through the pipe preamble as text.
const SLOTS = 2 ** 21;
const GENERATIONS = 2 ** 31;

/**
 * Entries by id, for things that come and go all the time, such as connections. An id names a slot
 * and how many times the slot was used, so a reused slot never answers to a stale id. Not a Map:
 * churn in a Map keeps its short-lived entries alive through young-generation GCs (measured).
 */
export class SlotTable<T> {
  readonly #entries: (T | undefined)[] = [];
  readonly #generations: number[] = [];
  readonly #free: number[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Stores `entry` and returns its id, or undefined when every slot is taken. */
  add(entry: T): number | undefined {
    const slot = this.#free.pop() ?? this.#entries.length;
    if (slot >= SLOTS) return undefined;
    const generation = ((this.#generations[slot] ?? 0) + 1) % GENERATIONS;
    this.#generations[slot] = generation;
    this.#entries[slot] = entry;
    this.#size++;
    return generation * SLOTS + slot;
  }

  get(id: number): T | undefined {
    const slot = id % SLOTS;
    return this.#generations[slot] === Math.floor(id / SLOTS) ? this.#entries[slot] : undefined;
  }

  delete(id: number): void {
    const slot = id % SLOTS;
    if (this.#entries[slot] === undefined || this.#generations[slot] !== Math.floor(id / SLOTS)) return;
    this.#entries[slot] = undefined;
    this.#free.push(slot);
    this.#size--;
  }

  *entries(): IterableIterator<[number, T]> {
    for (let slot = 0; slot < this.#entries.length; slot++) {
      const entry = this.#entries[slot];
      if (entry !== undefined) yield [this.#generations[slot]! * SLOTS + slot, entry];
    }
  }

  /** Empties every slot; the generations stay, so no id given out before is given out again. */
  clear(): void {
    for (let slot = 0; slot < this.#entries.length; slot++) {
      if (this.#entries[slot] === undefined) continue;
      this.#entries[slot] = undefined;
      this.#free.push(slot);
    }
    this.#size = 0;
  }
}
