// The connection limits, and the counts they are checked against, as every side names them.

export type LimitName = 'maxConnections' | 'maxConnectionsPerIp';

export type AdmissionLimits = Record<LimitName, number>;

/**
 * The counts limits are checked against: open connections in all and per peer. Kept on the main
 * thread, or in shared memory where workers admit connections themselves (the reuseport transport).
 * A peer '' is counted only in the total.
 */
export interface AdmissionCounts {
  readonly open: number;
  openFrom(peer: string): number;
  /** Counts a new connection in, or returns the limit it would break. */
  admit(peer: string, limits: AdmissionLimits): LimitName | undefined;
  release(peer: string): void;
}
