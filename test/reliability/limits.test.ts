import net from 'node:net';
import t from 'tap';
import { startLauncher } from '../launcher.ts';
import {
  appFixture,
  atDeadline,
  childEnv,
  httpRequest,
  now,
  pace,
  startChildProxy,
  summary,
  transports,
  waitFor,
} from './helpers.ts';

const PER_IP = 10;
const ADDRESSES = Array.from({ length: 10 }, (_, i) => `127.0.0.${i + 2}`);
const MAX_CONNECTIONS = 20;
const CLOSED_WITHIN_MS = 100;

/** A keep-alive HTTP/1.1 connection driven by hand, so that the test decides when it opens and closes. */
class Connection {
  readonly socket: net.Socket;
  readonly connected: Promise<number>;
  readonly closed: Promise<number>;
  #buffer = Buffer.alloc(0);
  #waiting: (() => void) | undefined;

  constructor(port: number, localAddress?: string) {
    this.socket = net.connect({ port, host: '127.0.0.1', localAddress });
    this.socket.on('error', () => {});
    this.connected = new Promise((resolve) => this.socket.once('connect', () => resolve(now())));
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve(now())));
    this.socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#waiting?.();
    });
    this.socket.on('close', () => this.#waiting?.());
  }

  /** One GET on this connection; resolves with the status, or rejects if the connection closes first. */
  async get(path = '/'): Promise<number> {
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    for (;;) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end !== -1) {
        const head = this.#buffer.subarray(0, end).toString('latin1');
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (this.#buffer.length >= end + 4 + length) {
          this.#buffer = this.#buffer.subarray(end + 4 + length);
          return Number(head.split(' ')[1]);
        }
      }
      if (this.socket.destroyed) throw new Error('connection closed before the response');
      await new Promise<void>((resolve) => (this.#waiting = resolve));
    }
  }
}

for (const transport of transports) {
  t.test(`${transport}: maxConnectionsPerIp ${PER_IP}`, async (t) => {
    const proxy = await startChildProxy(t, { transport, workerCount: 2, proxy: { maxConnectionsPerIp: PER_IP } });
    const open = new Map<string, Connection[]>();
    for (const address of ADDRESSES) {
      const connections = Array.from({ length: PER_IP }, () => new Connection(proxy.port, address));
      t.teardown(() => connections.forEach((connection) => connection.socket.destroy()));
      const statuses = await Promise.all(connections.map((connection) => connection.get()));
      t.same(new Set(statuses), new Set([200]), `${PER_IP} connections from ${address} served`);
      open.set(address, connections);
    }

    const extra = ADDRESSES.map((address) => new Connection(proxy.port, address));
    const delays = await Promise.all(
      extra.map(async (connection) => (await connection.closed) - (await connection.connected)),
    );
    t.comment(`${transport}: an 11th connection was closed after, ms: ${summary(delays, 1)}`);
    t.ok(
      delays.every((ms) => ms < CLOSED_WITHIN_MS),
      `every 11th connection was closed within ${CLOSED_WITHIN_MS} ms`,
    );

    const again = await Promise.all([...open.values()].flat().map((connection) => connection.get().catch(() => 0)));
    t.equal(
      again.filter((status) => status === 200).length,
      PER_IP * ADDRESSES.length,
      'the admitted connections are still served',
    );
    t.equal((await proxy.snapshot()).stats.refused, ADDRESSES.length, 'stats() counts the refused connections');

    // Once one closes, its address may connect again: the workers report which addresses closed.
    const [first] = open.get(ADDRESSES[0]!)!;
    first!.socket.destroy();
    await first!.closed;
    const admitted = await waitFor(
      async () => {
        const retry = new Connection(proxy.port, ADDRESSES[0]);
        t.teardown(() => retry.socket.destroy());
        return (await retry.get().catch(() => 0)) === 200;
      },
      { timeout: 3000, interval: 50, what: `a new connection from ${ADDRESSES[0]} admitted` },
    ).then(() => true, atDeadline(false));
    t.ok(admitted, `a new connection from ${ADDRESSES[0]} is admitted once one of its connections closed`);
  });

  t.test(`${transport}: maxConnections ${MAX_CONNECTIONS}`, async (t) => {
    const proxy = await startChildProxy(t, { transport, workerCount: 2, proxy: { maxConnections: MAX_CONNECTIONS } });
    const connections = Array.from(
      { length: MAX_CONNECTIONS },
      (_, i) => new Connection(proxy.port, ADDRESSES[i % ADDRESSES.length]),
    );
    t.teardown(() => connections.forEach((connection) => connection.socket.destroy()));
    t.same(
      new Set(await Promise.all(connections.map((connection) => connection.get()))),
      new Set([200]),
      `${MAX_CONNECTIONS} connections served`,
    );

    const extra = new Connection(proxy.port);
    const closedAfter = (await extra.closed) - (await extra.connected);
    t.comment(`${transport}: connection ${MAX_CONNECTIONS + 1} was closed after ${closedAfter.toFixed(1)} ms`);
    t.ok(closedAfter < CLOSED_WITHIN_MS, `connection ${MAX_CONNECTIONS + 1} was closed within ${CLOSED_WITHIN_MS} ms`);
    const again = await Promise.all(connections.map((connection) => connection.get().catch(() => 0)));
    t.equal(
      again.filter((status) => status === 200).length,
      MAX_CONNECTIONS,
      'the admitted connections are still served',
    );
    t.equal((await proxy.snapshot()).stats.refused, 1, 'stats() counts the refused connection');
  });
}

const HEADERS_TIMEOUT_MS = 2000;
const SLOW_CLIENTS = 20;

/** Sends a request's head one byte a second; resolves with how long after connecting it was cut off. */
function slowloris(port: number): Promise<{ after: number; sent: number; reply: string }> {
  return new Promise((resolve) => {
    const head = `GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(100)}`;
    let sent = 0;
    let reply = '';
    let connectedAt = 0;
    let timer: NodeJS.Timeout | undefined;
    const socket = net.connect(port, '127.0.0.1', () => {
      connectedAt = now();
      const next = (): void => {
        if (socket.destroyed || sent >= head.length) return;
        socket.write(head[sent++]!);
        timer = setTimeout(next, 1000);
      };
      next();
    });
    socket.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ after: now() - connectedAt, sent, reply: reply.split('\r\n')[0] ?? '' });
    });
  });
}

for (const transport of transports) {
  t.test(
    `${transport}: launcher --headers-timeout ${HEADERS_TIMEOUT_MS} cuts off slowloris clients, and serves the others`,
    async (t) => {
      const launcher = await startLauncher(
        t,
        [
          '--workers',
          '2',
          '--transport',
          transport,
          '--headers-timeout',
          String(HEADERS_TIMEOUT_MS),
          appFixture.pathname,
        ],
        childEnv(),
      );
      const slow = Promise.all(Array.from({ length: SLOW_CLIENTS }, () => slowloris(launcher.port)));
      let done = false;
      const normal = { ok: 0, failed: [] as string[] };
      const results = slow.finally(() => (done = true));
      while (!done) {
        try {
          const reply = await httpRequest(launcher.port, { deadline: 2000 });
          if (reply.status === 200) normal.ok++;
          else normal.failed.push(`HTTP ${reply.status}`);
        } catch (err) {
          normal.failed.push((err as Error).message);
        }
        await pace(100);
      }
      const cut = await results;
      t.comment(
        `${transport}: slow clients cut off after, ms: ${summary(cut.map((c) => c.after))}; ` +
          `bytes sent by then: ${summary(cut.map((c) => c.sent))}; replies: ${[...new Set(cut.map((c) => c.reply || '(none)'))].join(', ')}; ` +
          `${normal.ok} normal requests meanwhile`,
      );
      t.ok(
        cut.every((c) => c.after >= HEADERS_TIMEOUT_MS && c.after <= 2 * HEADERS_TIMEOUT_MS),
        `every slow client was cut off 2 to 4 s after connecting`,
      );
      t.same(normal.failed, [], 'every normal request meanwhile succeeded');
      t.ok(normal.ok >= 10, 'normal requests ran throughout');
    },
  );
}
