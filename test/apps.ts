// Shared by the tests in test/apps: an app written the way people write it, importing nothing of
// socketnaut, runs unchanged under the launcher, and sees each client's own connection, both through
// its framework's client IP and through the socket: the client's address and port as the remote end,
// the public end the client connected to as the local end. In both transports, and behind HAProxy
// with PROXY protocol v1 and v2, where the client is the one HAProxy accepted.
import t from 'tap';
import type { Test } from 'tap';
import { freePort, request, transports } from './helpers.ts';
import { startLauncher } from './launcher.ts';
import { haproxyConfig, skipUnlessInstalled, startHaproxy } from './services.ts';

/** What a fixture app in fixtures/apps/ answers to GET /. */
export interface Seen {
  /** The framework's own client IP (req.ip, ctx.ip, request.ip, getConnInfo(c).remote.address). */
  ip: unknown;
  remoteAddress: unknown;
  remotePort: unknown;
  remoteFamily: unknown;
  localAddress: unknown;
  localPort: unknown;
  /** socket.address() */
  address: unknown;
  /** Hono only: getConnInfo(c).remote.port. */
  connInfoPort?: unknown;
}

/** The source of a client connection: the loopback address and port it is bound to. */
export interface Client {
  address: string;
  port: number;
}

export interface AppTestOptions {
  /** How the framework names its client IP, for the assertions' names: `req.ip`, `ctx.ip`. */
  ip: string;
  /** More assertions on each answer (Hono's connection info port). */
  extra?: (t: Test, seen: Seen, client: Client, what: string) => void;
}

export function appPath(name: string): string {
  return new URL(`./fixtures/apps/${name}`, import.meta.url).pathname;
}

/** `n` loopback ports, all different, that were free a moment ago. */
export async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** GET / on a fresh connection from `client` (bound to its address and port) to 127.0.0.1:port. */
export async function ask(port: number, client: Client): Promise<Seen> {
  const reply = await request(port, { localAddress: client.address, localPort: client.port });
  if (reply.status !== 200) throw new Error(`HTTP ${reply.status} for ${client.address}:${client.port}: ${reply.text}`);
  return JSON.parse(reply.text) as Seen;
}

/**
 * Asserts that the app saw `client` as the remote end and 127.0.0.1:publicPort (the port the client
 * connected to) as the local end.
 */
export function expectSeen(
  t: Test,
  seen: Seen,
  client: Client,
  publicPort: number,
  what: string,
  options: AppTestOptions,
): void {
  t.equal(seen.ip, client.address, `${what}: ${options.ip} is the client's address`);
  t.equal(seen.remoteAddress, client.address, `${what}: socket.remoteAddress is the client's address`);
  t.equal(seen.remotePort, client.port, `${what}: socket.remotePort is the client's port`);
  t.equal(seen.remoteFamily, 'IPv4', `${what}: socket.remoteFamily`);
  t.equal(seen.localAddress, '127.0.0.1', `${what}: socket.localAddress is the address the client connected to`);
  t.equal(seen.localPort, publicPort, `${what}: socket.localPort is the port the client connected to`);
  t.strictSame(
    seen.address,
    { address: '127.0.0.1', family: 'IPv4', port: publicPort },
    `${what}: socket.address() is the end the client connected to`,
  );
  options.extra?.(t, seen, client, what);
}

/** Two clients at once (so that each of the two workers may get one), each checked. */
async function askBoth(
  t: Test,
  port: number,
  clients: Client[],
  publicPort: number,
  what: string,
  options: AppTestOptions,
): Promise<void> {
  const answers = await Promise.all(clients.map((client) => ask(port, client)));
  answers.forEach((seen, i) =>
    expectSeen(t, seen, clients[i]!, publicPort, `${what}, client ${clients[i]!.address}`, options),
  );
}

/** Registers, for each transport, the direct and the behind-HAProxy tests of the fixture app `name`. */
export function testApp(name: string, options: AppTestOptions): void {
  const app = appPath(name);
  for (const transport of transports) {
    t.test(`${transport}: ${name} sees each client's connection`, async (t) => {
      const launcher = await startLauncher(t, [app, '--workers', '2', '--transport', transport]);
      t.match(launcher.stdout(), `transport ${transport}`);
      const [first, second] = await distinctFreePorts(2);
      const clients = [
        { address: '127.0.0.31', port: first! },
        { address: '127.0.0.32', port: second! },
      ];
      await askBoth(t, launcher.port, clients, launcher.port, 'direct', options);
    });

    t.test(
      `${transport}: ${name} behind HAProxy sees the client HAProxy accepted`,
      { skip: skipUnlessInstalled('haproxy') },
      async (t) => {
        const launcher = await startLauncher(t, [app, '--workers', '2', '--transport', transport, '--proxy-protocol']);
        t.match(launcher.stdout(), `transport ${transport}`);
        const [v1Port, v2Port, ...ports] = await distinctFreePorts(6);
        await startHaproxy(t, haproxyConfig(launcher.port, { v1: v1Port!, v2: v2Port! }));
        const v1Clients = [
          { address: '127.0.0.33', port: ports[0]! },
          { address: '127.0.0.34', port: ports[1]! },
        ];
        const v2Clients = [
          { address: '127.0.0.35', port: ports[2]! },
          { address: '127.0.0.36', port: ports[3]! },
        ];
        await askBoth(t, v1Port!, v1Clients, v1Port!, 'send-proxy (v1)', options);
        await askBoth(t, v2Port!, v2Clients, v2Port!, 'send-proxy-v2', options);
      },
    );
  }
}
