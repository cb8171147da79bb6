// What an adapter's message becomes to cross threads by structured clone. It must reach the other workers
// as socket.io would put it on the wire, which structured clone alone does not do:
// - a Buffer is a view of a shared pool, and a cloned view carries its whole ArrayBuffer (64 KiB for 3
//   bytes): each binary value is copied to its own bytes, and arrives as a Buffer, as on a socket;
// - toJSON() is honoured and functions are left out, as JSON.stringify does, where structured clone would
//   drop the first and throw on the second.

/** Whether a message holds binary data, so that the receiver knows to make Buffers of it again. */
export interface Found {
  binary: boolean;
}

/** `value` ready for postMessage: `value` itself when nothing in it has to change, otherwise a copy. */
export function toCloneable(value: unknown, found: Found): unknown {
  return prepare(value, found, new Set());
}

function omitted(value: unknown): boolean {
  return typeof value === 'function' || typeof value === 'symbol';
}

function prepare(value: unknown, found: Found, ancestors: Set<object>): unknown {
  if (typeof value !== 'object' || value === null || value instanceof Date) return value;
  if (ArrayBuffer.isView(value)) {
    found.binary = true;
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice();
  }
  if (value instanceof ArrayBuffer) {
    found.binary = true;
    return new Uint8Array(value.slice(0));
  }
  const { toJSON } = value as { toJSON?: unknown };
  if (typeof toJSON === 'function') return prepare(toJSON.call(value), found, ancestors);
  // A cycle, which structured clone keeps as it is.
  if (ancestors.has(value)) return value;
  ancestors.add(value);
  const copy = Array.isArray(value) ? prepareArray(value, found, ancestors) : prepareObject(value, found, ancestors);
  ancestors.delete(value);
  return copy;
}

function prepareArray(array: unknown[], found: Found, ancestors: Set<object>): unknown[] {
  let copy: unknown[] | undefined;
  for (let i = 0; i < array.length; i++) {
    const item = array[i];
    const next = omitted(item) ? null : prepare(item, found, ancestors);
    if (next === item) continue;
    copy ??= array.slice();
    copy[i] = next;
  }
  return copy ?? array;
}

function prepareObject(object: object, found: Found, ancestors: Set<object>): object {
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(object)) {
    if (omitted(item)) {
      copy ??= { ...object };
      delete copy[key];
      continue;
    }
    const next = prepare(item, found, ancestors);
    if (next === item) continue;
    copy ??= { ...object };
    copy[key] = next;
  }
  return copy ?? object;
}

/** Makes a Buffer of each Uint8Array in a received message, in place, sharing its bytes. */
export function restoreBuffers(value: unknown, seen: Set<object> = new Set()): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value !== 'object' || value === null || seen.has(value)) return value;
  seen.add(value);
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) record[key] = restoreBuffers(record[key], seen);
  return value;
}
