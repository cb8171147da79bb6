// Up to 2^21 entries at once, each cell reused up to 2^31 times before its ids repeat: ids stay
// below 2^52, safe integers that pass through the pipe preamble as text.
const CELLS = 2 ** 21;
const GENERATIONS = 2 ** 31;

/**
 * Entries by id, for things that come and go all the time, such as connections. An id names a cell
 * and how many times the cell was used, so a reused cell never answers to a stale id. Not a Map:
 * churn in a Map keeps its short-lived entries alive through young-generation GCs (measured).
 */
export class IdTable<T> {
  readonly #entries: (T | undefined)[] = [];
  readonly #generations: number[] = [];
  readonly #free: number[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Stores `entry` and returns its id, or undefined when every cell is taken. */
  add(entry: T): number | undefined {
    const cell = this.#free.pop() ?? this.#entries.length;
    if (cell >= CELLS) return undefined;
    const generation = ((this.#generations[cell] ?? 0) + 1) % GENERATIONS;
    this.#generations[cell] = generation;
    this.#entries[cell] = entry;
    this.#size++;
    return generation * CELLS + cell;
  }

  get(id: number): T | undefined {
    const cell = id % CELLS;
    return this.#generations[cell] === Math.floor(id / CELLS) ? this.#entries[cell] : undefined;
  }

  delete(id: number): void {
    const cell = id % CELLS;
    if (this.#entries[cell] === undefined || this.#generations[cell] !== Math.floor(id / CELLS)) return;
    this.#entries[cell] = undefined;
    this.#free.push(cell);
    this.#size--;
  }

  *entries(): IterableIterator<[number, T]> {
    for (let cell = 0; cell < this.#entries.length; cell++) {
      const entry = this.#entries[cell];
      if (entry !== undefined) yield [this.#generations[cell]! * CELLS + cell, entry];
    }
  }

  /** Empties every cell; the generations stay, so no id given out before is given out again. */
  clear(): void {
    for (let cell = 0; cell < this.#entries.length; cell++) {
      if (this.#entries[cell] === undefined) continue;
      this.#entries[cell] = undefined;
      this.#free.push(cell);
    }
    this.#size = 0;
  }
}
