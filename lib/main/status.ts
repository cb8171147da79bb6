import type { Writable } from 'node:stream';
import type { ServiceProxy } from './service-proxy.ts';
import type { ProxyStats } from './stats.ts';

/**
 * Writes one line about the pool every `seconds`: readable in a terminal, and a JSON object per line
 * when the output is not a terminal, so that it can be parsed. Returns a function that stops it.
 */
export function startStatusLine(
  proxy: ServiceProxy,
  seconds: number,
  output: Writable & { isTTY?: boolean } = process.stdout,
): () => void {
  const timer = setInterval(() => {
    proxy.stats('status').then(
      (stats) => output.write(output.isTTY ? humanLine(stats) : jsonLine(stats)),
      () => {},
    );
  }, seconds * 1000).unref();
  return () => clearInterval(timer);
}

function percent(ratio: number): string {
  return `${Math.round(ratio * 100)}%`;
}

export function humanLine(stats: ProxyStats): string {
  const workers = stats.workers
    .filter((w) => w.state !== 'exited')
    .map(
      (w) =>
        `#${w.slot} ${w.connections} conn ${percent(w.eventLoopUtilization)}${w.status === 'serving' ? '' : ` ${w.status}`}`,
    )
    .join(' · ');
  const time = new Date().toISOString().slice(11, 19);
  return `socketnaut ${time} ${stats.workers.length} workers, ${stats.connections} conn, ${stats.queuedNow} queued | ${workers}\n`;
}

export function jsonLine(stats: ProxyStats): string {
  return `${JSON.stringify({
    time: new Date().toISOString(),
    workers: stats.workers.map((w) => ({
      slot: w.slot,
      threadId: w.threadId,
      state: w.state,
      status: w.status,
      connections: w.connections,
      eventLoopUtilization: Number(w.eventLoopUtilization.toFixed(4)),
      restarts: w.restarts,
    })),
    connections: stats.connections,
    queued: stats.queuedNow,
    accepted: stats.accepted,
    refused: stats.refused,
    restarts: stats.restarts,
  })}\n`;
}
