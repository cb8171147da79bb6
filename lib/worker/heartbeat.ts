import { subscribe } from 'node:diagnostics_channel';
import { HEARTBEAT_INTERVAL_MS, HEARTBEAT_REQUESTS, HEARTBEAT_TURN, heartbeatClock } from '../protocol/messages.ts';

/**
 * Writes this worker's heartbeat into the memory it shares with the main thread: the time, each
 * time its event loop turns (at most every HEARTBEAT_INTERVAL_MS), and a count of the HTTP requests
 * it begins. A stuck loop writes neither; the timer keeps nothing alive.
 */
export function startHeartbeat(buffer: SharedArrayBuffer | undefined): void {
  if (!buffer) return;
  const cells = new Int32Array(buffer);
  const beat = (): void => {
    Atomics.store(cells, HEARTBEAT_TURN, heartbeatClock());
  };
  beat();
  setInterval(beat, HEARTBEAT_INTERVAL_MS).unref();
  // One turn of a busy loop may run many requests, each in its own callback: each is progress.
  subscribe('http.server.request.start', () => {
    Atomics.add(cells, HEARTBEAT_REQUESTS, 1);
  });
}
