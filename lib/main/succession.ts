import type { WorkerHandle } from './worker-handle.ts';

/** What replacing workers needs of the pool. */
export interface Succession {
  readonly handles: ReadonlySet<WorkerHandle>;
  grow(successorOf?: WorkerHandle): WorkerHandle | undefined;
  retire(handle: WorkerHandle, signal: NodeJS.Signals | undefined, timeout?: number): void;
}

function replaceable(handle: WorkerHandle): boolean {
  return (handle.state === 'ready' || handle.state === 'starting') && !handle.replacing;
}

/**
 * Starts a successor in `handle`'s slot, marking `handle` as being replaced meanwhile. Resolves with
 * the successor once it serves; or undefined, leaving `handle` as it was, if none could start or it
 * exited first.
 */
export async function startSuccessor(
  pool: Succession,
  handle: WorkerHandle,
  prepare?: (successor: WorkerHandle) => void,
): Promise<WorkerHandle | undefined> {
  const successor = replaceable(handle) ? pool.grow(handle) : undefined;
  if (!successor) return undefined;
  prepare?.(successor);
  handle.replacing = true;
  const served = await successor.serving.then(
    () => true,
    () => false,
  );
  handle.replacing = served;
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
  const retired: WorkerHandle[] = [];
  for (const handle of [...pool.handles].filter(replaceable)) {
    if (!replaceable(handle)) continue;
    const successor = pool.grow(handle);
    if (!successor) break;
    handle.replacing = true;
    try {
      await successor.serving;
    } finally {
      handle.replacing = false;
    }
    // It may have died while its successor started; the successor already took its place.
    if (!pool.handles.has(handle)) continue;
    pool.retire(handle, signal, timeout);
    retired.push(handle);
  }
  await Promise.all(retired.map((handle) => handle.exited));
}
