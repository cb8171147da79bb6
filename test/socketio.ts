// Socket.IO clients for the tests of test/socketio: each on one WebSocket (no long-polling, so no
// request of a session can reach another worker), driving the server of its worker through the events
// of test/fixtures/socketio/handlers.cjs.
import type { Test } from 'tap';
import { io, type ManagerOptions, type Socket } from 'socket.io-client';
import { withDeadline } from './helpers.ts';

export interface Client {
  socket: Socket;
  /** The worker thread that serves it. */
  threadId: number;
}

/** What a handler of handlers.cjs acknowledges with. */
export interface Answer<T> {
  value?: T;
  error?: string;
}

export async function connect(t: Test, port: number, options: Partial<ManagerOptions> = {}): Promise<Client> {
  const socket = io(`http://127.0.0.1:${port}`, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    ...options,
  });
  t.teardown(() => void socket.close());
  await withDeadline(
    new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    }),
    5000,
    'connect',
  );
  const threadId = (await socket.timeout(5000).emitWithAck('whoami')) as number;
  return { socket, threadId };
}

/** Asks the client's worker to do something; its answer, or an error with what the worker threw. */
export async function ask<T = unknown>(client: Client, event: string, ...args: unknown[]): Promise<T> {
  const answer = (await client.socket.timeout(10_000).emitWithAck(event, ...args)) as Answer<T>;
  if (answer.error !== undefined) throw new Error(`${event} on worker ${client.threadId}: ${answer.error}`);
  return answer.value as T;
}

/**
 * Connects clients until each of `workers` workers serves `each` of them (round-robin spreads them);
 * any extra ones are closed. Grouped by worker thread.
 */
export async function clientsOnEveryWorker(
  t: Test,
  port: number,
  workers: number,
  each: number,
  options: Partial<ManagerOptions> = {},
): Promise<Map<number, Client[]>> {
  const byThread = new Map<number, Client[]>();
  const full = () => byThread.size === workers && [...byThread.values()].every((clients) => clients.length >= each);
  for (let attempt = 0; attempt < workers * each * 4 && !full(); attempt++) {
    const client = await connect(t, port, options);
    const clients = byThread.get(client.threadId) ?? [];
    if (clients.length >= each) client.socket.close();
    else byThread.set(client.threadId, [...clients, client]);
  }
  if (!full()) throw new Error(`clients did not reach ${workers} workers: ${[...byThread.keys()].join(', ')}`);
  return byThread;
}

/** The next `event` a client receives, as its arguments; rejects after `ms`. */
export function next(client: Client, event: string, ms = 5000): Promise<unknown[]> {
  return withDeadline(
    new Promise<unknown[]>((resolve) => client.socket.once(event, (...args: unknown[]) => resolve(args))),
    ms,
    `'${event}' at a client of worker ${client.threadId}`,
  );
}

/** Every `event` a client receives from now on. */
export function record(client: Client, event: string): unknown[][] {
  const seen: unknown[][] = [];
  client.socket.on(event, (...args: unknown[]) => seen.push(args));
  return seen;
}
