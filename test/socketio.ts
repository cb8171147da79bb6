// Socket.IO clients for the tests of test/socketio, driving the server of their worker through the
// events of test/fixtures/socketio/handlers.cjs: connect() on one WebSocket (no long-polling, so no
// request of a session reaches another worker), chat() through Socket.IO's own flow.
import http from 'node:http';
import type { Test } from 'tap';
import { io, type ManagerOptions, type Socket } from 'socket.io-client';
import { waitFor, withDeadline } from './helpers.ts';

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

/** A client of Socket.IO's own flow: long-polling first, then the upgrade to WebSocket. */
export interface Chat {
  socket: Socket;
  threadId: number;
}

// socket.io-client's typings name the agent of browsers (a string or boolean); Node's clients take an http.Agent.
export function agentFrom(t: Test, address: string): string {
  const agent = new http.Agent({ localAddress: address });
  t.teardown(() => agent.destroy());
  return agent as unknown as string;
}

export async function chat(t: Test, port: number, options: Partial<ManagerOptions> = {}): Promise<Chat> {
  const socket = io(`http://127.0.0.1:${port}`, { forceNew: true, reconnection: false, ...options });
  t.teardown(() => void socket.close());
  await withDeadline(
    new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    }),
    10_000,
    'connect',
  );
  const threadId = (await socket.timeout(5000).emitWithAck('whoami')) as number;
  return { socket, threadId };
}

/** Waits until every client runs on WebSocket: the upgrade has reached each session's owner. */
export async function upgraded(chats: Chat[]): Promise<void> {
  await waitFor(() => chats.every((c) => c.socket.io.engine.transport.name === 'websocket'), {
    timeout: 10_000,
    what: 'every client upgraded to WebSocket',
  });
}

export function spread(chats: Chat[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const { threadId } of chats) counts.set(threadId, (counts.get(threadId) ?? 0) + 1);
  return counts;
}

export async function everyoneHears(t: Test, chats: Chat[], from: Chat): Promise<void> {
  const payload = `news-${Math.random()}`;
  const heard = chats.map(
    (c) =>
      new Promise<void>((resolve) =>
        c.socket.on('news', (value: unknown) => {
          if (value === payload) resolve();
        }),
      ),
  );
  await from.socket.timeout(5000).emitWithAck('emit', payload);
  await withDeadline(Promise.all(heard), 5000, `one io.emit() reaching all ${chats.length}`);
  t.pass(`one io.emit() reached all ${chats.length} clients`);
}
