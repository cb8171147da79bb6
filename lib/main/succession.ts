import type { WorkerRecord } from './worker-record.ts';

/** What replacing workers needs of the pool. */
export interface Succession {
  readonly records: ReadonlySet<WorkerRecord>;
  grow(successorOf?: WorkerRecord, succession?: 'reload' | 'recycle'): WorkerRecord | undefined;
  retire(record: WorkerRecord, signal: NodeJS.Signals | undefined, timeout?: number): void;
}

function replaceable(record: WorkerRecord): boolean {
  return (record.state === 'ready' || record.state === 'starting') && !record.replacing;
}

/**
 * Starts a successor in `record`'s slot, marking `record` as being replaced meanwhile. Resolves with
 * the successor once it serves; or undefined, leaving `record` as it was, if none could start or it
 * exited first.
 */
export async function startSuccessor(
  pool: Succession,
  record: WorkerRecord,
  prepare?: (successor: WorkerRecord) => void,
): Promise<WorkerRecord | undefined> {
  const successor = replaceable(record) ? pool.grow(record, 'recycle') : undefined;
  if (!successor) return undefined;
  prepare?.(successor);
  record.replacementStarted();
  const served = await successor.serving.then(
    () => true,
    () => false,
  );
  record.replacementEnded(served);
  return served ? successor : undefined;
}

/**
 * Replaces each worker in turn by a successor in its slot, retiring it once the successor serves,
 * and resolves once the old workers are gone: drained, or stopped `timeout` ms after retiring.
 * Rejects if a successor exits before it serves, leaving the old workers that remain serving.
 */
export async function replaceEach(
  pool: Succession,
  timeout: number,
  signal: NodeJS.Signals | undefined,
): Promise<void> {
  const retired: WorkerRecord[] = [];
  for (const record of [...pool.records].filter(replaceable)) {
    if (!replaceable(record)) continue;
    const successor = pool.grow(record, 'reload');
    if (!successor) break;
    record.replacementStarted();
    try {
      await successor.serving;
    } finally {
      record.replacementEnded(false);
    }
    // It may have died while its successor started; the successor already took its place.
    if (!pool.records.has(record)) continue;
    pool.retire(record, signal, timeout);
    retired.push(record);
  }
  await Promise.all(retired.map((record) => record.exited));
}
