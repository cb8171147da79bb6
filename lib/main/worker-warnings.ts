import path from 'node:path';
import type { WorkerWarning } from '../protocol/messages.ts';

// How long the first of a warning waits for the same from the other workers, which start together.
const GATHER_MS = 300;

/**
 * Prints each distinct warning the workers give once for the process, as Node prints it, with the
 * number of workers that gave it within a moment of the first; later repeats (from the workers a
 * reload or a restart starts) are not printed again.
 */
export class WorkerWarnings {
  readonly #seen = new Set<string>();
  readonly #gathering = new Map<string, { warning: WorkerWarning; workers: Set<number> }>();
  #timer: NodeJS.Timeout | undefined;
  #hintShown = false;
  readonly #flush = (): void => this.#printGathered();

  /** `warning`, given by the worker of `threadId`. */
  add(threadId: number, warning: WorkerWarning): void {
    const key = `${warning.code ?? ''}\0${warning.name}\0${warning.message}`;
    this.#gathering.get(key)?.workers.add(threadId);
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.#gathering.set(key, { warning, workers: new Set([threadId]) });
    if (this.#timer) return;
    this.#timer = setTimeout(this.#flush, GATHER_MS).unref();
    process.once('exit', this.#flush);
  }

  #printGathered(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    process.off('exit', this.#flush);
    for (const { warning, workers } of this.#gathering.values())
      process.stderr.write(`${this.#format(warning, workers.size)}\n`);
    this.#gathering.clear();
  }

  #format({ name, message, code, detail }: WorkerWarning, workers: number): string {
    let text = `(${process.release.name}:${process.pid}) ${code ? `[${code}] ` : ''}${name}: ${message}`;
    if (workers > 1) text += ` (from ${workers} workers)`;
    if (detail !== undefined) text += `\n${detail}`;
    if (!this.#hintShown) {
      this.#hintShown = true;
      const flag = name === 'DeprecationWarning' ? '--trace-deprecation' : '--trace-warnings';
      text += `\n(Use \`${path.basename(process.argv0 || 'node', '.exe')} ${flag} ...\` to show where the warning was created)`;
    }
    return text;
  }
}
