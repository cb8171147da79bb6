// Under ip-hash with trustProxy, workers route each request from a trusted proxy to the worker its
// client hashes to (see worker/client-routing.ts): they must know which workers take requests now,
// and their slots. The main thread owns that, and tells every live worker whenever it changes.
import type { Member } from '../protocol/messages.ts';
import type { WorkerRecord } from './worker-record.ts';

interface Pool {
  readonly ready: readonly WorkerRecord[];
  readonly records: ReadonlySet<WorkerRecord>;
}

export class Membership {
  readonly enabled: boolean;
  readonly #pool: Pool;

  constructor(enabled: boolean, pool: Pool) {
    this.enabled = enabled;
    this.#pool = pool;
  }

  /** The ready workers changed: each live one, retiring ones too (their keep-alive connections still bring requests), hears who they are. */
  changed(): void {
    if (!this.enabled) return;
    const members: Member[] = this.#pool.ready.map(({ id, slot }) => ({ id, slot }));
    for (const record of this.#pool.records) record.send({ type: 'members', members });
  }
}
