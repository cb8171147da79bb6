import type net from 'node:net';
import type { ConcreteTransportName } from '../protocol/messages.ts';
import type { WorkerRecord, WorkerStatus } from './worker-record.ts';
import type { HealthCounters } from './worker-health.ts';

/** What the proxy has done with the connections it accepted, since it started. */
export interface ConnectionCounters {
  /** Connections the server accepted. */
  accepted: number;
  /** Connections given to a worker, counting each re-dispatch again. */
  dispatched: number;
  /** Connections a worker could not take, offered to another. */
  redispatched: number;
  /** Connections closed at once for breaking maxConnections or maxConnectionsPerIp. */
  refused: number;
  /** Connections that had to wait for a worker. */
  queued: number;
  /** Connections closed because the queue was full or their wait ran out. */
  expired: number;
  /** Accepts that failed, for instance for lack of file descriptors. */
  acceptErrors: number;
  /** Connections closed for a missing, malformed, slow or untrusted PROXY header. */
  proxyHeaderRejected: number;
  /** Connections the worker that accepted them moved to a less busy one (transport 'reuseport'). */
  forwarded: number;
}

/** One of the ports the app's other servers listen on, and what was done with its connections. */
export interface ListenerStats extends ConnectionCounters {
  address: net.AddressInfo | string | null;
  /** Workers whose server listens there. */
  workers: number;
}

export interface WorkerStats {
  slot: number;
  threadId: number;
  /** Its life cycle: 'starting', 'ready', 'retiring' (see `status` for whether a ready one is stalled). */
  state: string;
  /** What it is doing: 'starting', 'serving', 'stalled' (its event loop stuck for 1 s or more) or 'retiring'. */
  status: WorkerStatus;
  /** Milliseconds since it last showed life (its event loop turned, or it began a request); undefined when stalls are not watched. */
  heartbeatAgeMs: number | undefined;
  /** Open now. */
  connections: number;
  /** Given to this worker since it started. */
  totalConnections: number;
  /** Share of time its event loop was busy since the previous stats() call of the same reader, or its start. */
  eventLoopUtilization: number;
  /** V8 heap in use, in bytes; undefined where the runtime cannot tell. */
  heapUsed: number | undefined;
  uptimeMs: number;
  /** Times the worker in this slot died and was replaced. */
  restarts: number;
}

export interface ProxyStats extends ConnectionCounters, HealthCounters {
  transport: ConcreteTransportName | undefined;
  /** The ports the app's other servers listen on, opened once here for the workers (see ListenerStats). */
  listeners: ListenerStats[];
  /** Waiting for a worker now. */
  queuedNow: number;
  /** Open now, summed over the workers. */
  connections: number;
  restarts: number;
  reloads: number;
  workers: WorkerStats[];
}

export interface StatsSources {
  transport: ConcreteTransportName | undefined;
  listeners: ListenerStats[];
  counters: ConnectionCounters;
  queued: number;
  restarts: number;
  reloads: number;
  health: HealthCounters;
  workers: WorkerRecord[];
}

export async function collectStats(since: string, minInterval: number, sources: StatsSources): Promise<ProxyStats> {
  const now = performance.now();
  const workers = await Promise.all(
    sources.workers.map(
      async (record): Promise<WorkerStats> => ({
        slot: record.slot,
        threadId: record.threadId,
        state: record.state,
        status: record.status,
        heartbeatAgeMs: record.heartbeatAgeMs,
        connections: record.connections,
        totalConnections: record.account.given,
        eventLoopUtilization: record.eventLoopUtilization(since, minInterval),
        heapUsed: await record.heapUsed(),
        uptimeMs: now - record.startedAt,
        restarts: record.restarts,
      }),
    ),
  );
  return {
    transport: sources.transport,
    listeners: sources.listeners,
    ...sources.counters,
    queuedNow: sources.queued,
    connections: workers.reduce((sum, worker) => sum + worker.connections, 0),
    restarts: sources.restarts,
    reloads: sources.reloads,
    ...sources.health,
    workers,
  };
}
