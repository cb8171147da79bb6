import type { Intake, OwnCounters } from '../intake.ts';

const NONE: OwnCounters = Object.freeze({ accepted: 0, refused: 0, forwarded: 0 });

/**
 * The main thread accepts every connection on the public port and dispatches it; the workers accept
 * none themselves, so there is nothing to follow of their lives.
 */
export class MainThreadIntake implements Intake {
  readonly sharedCounts = undefined;

  workerBoot(): undefined {
    return undefined;
  }

  add(): void {}

  rest(): void {}

  remove(): void {}

  // Never called: only workers that accept connections hold listeners to give back.
  listenerReturned(): void {}

  ownConnections(): undefined {
    return undefined;
  }

  ownCounters(): OwnCounters {
    return NONE;
  }

  // The public server is the proxy's own, which closes it.
  stopAccepting(): void {}
}
