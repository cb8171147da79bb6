import fs from 'node:fs';

const RESERVED_FDS = 64;
const FDS_PER_WORKER = 16;
const MIN_CONNECTIONS = 16;

/** The soft limit on open files of this process, where the platform tells (Linux); else undefined. */
export function openFileLimit(): number | undefined {
  try {
    const limits = fs.readFileSync('/proc/self/limits', 'utf8');
    const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/**
 * How many connections of `fdsPerConnection` descriptors each the process can hold below its
 * open-file limit, leaving room for the workers and everything else; undefined when unlimited.
 * Out of descriptors, accepting fails in a way libuv cannot shed when several threads share the
 * process (the listener then wakes the loop forever), so connections are kept below the limit instead.
 */
export function connectionBudget(fdsPerConnection: number, maxWorkers: number): number | undefined {
  const limit = openFileLimit();
  if (limit === undefined) return undefined;
  const reserved = RESERVED_FDS + FDS_PER_WORKER * maxWorkers;
  return Math.max(MIN_CONNECTIONS, Math.floor((limit - reserved) / fdsPerConnection));
}
