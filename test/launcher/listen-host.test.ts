// The public port is bound where the app asks, as node:cluster's primary binds it: the app's host,
// its family, its ipv6Only; no host is Node's own default; --host overrides. Nothing listens on an
// address the app did not ask for: the launcher's listening sockets are read from /proc, as `ss`
// reads them. The start-up line names the address bound, and a scheme only for an HTTP server.
import fs from 'node:fs';
import net from 'node:net';
import t, { type Test } from 'tap';
import { appPath, ask } from '../apps.ts';
import { fixture, request, transports } from '../helpers.ts';
import { type RunningLauncher, runLauncher, startLauncher, transportsHere } from '../launcher.ts';

const app = fixture('listen-host.js').pathname;
const linux = process.platform === 'linux';
const hasIpv6 = linux && fs.readFileSync('/proc/net/if_inet6', 'utf8').includes('00000000000000000000000000000001');
const allTransports = await transportsHere([...transports, 'reuseport']);

/** The inodes of the sockets process `pid` holds. */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch {
      // Closed meanwhile.
    }
  }
  return inodes;
}

/** An address of /proc/net/tcp{,6}: hex, each 32-bit word in the host's order (little-endian here). */
function addressOf(hex: string, v6: boolean): string {
  const bytes = Buffer.from(hex, 'hex');
  for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
  if (!v6) return [...bytes].join('.');
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(2 * i).toString(16));
  return new URL(`http://[${groups.join(':')}]`).hostname;
}

/** Every TCP address:port process `pid` listens on, as `ss -ltnp` lists them. */
function listeningOf(pid: number): string[] {
  const inodes = socketInodes(pid);
  const found = new Set<string>();
  for (const [file, v6] of [
    ['/proc/net/tcp', false],
    ['/proc/net/tcp6', true],
  ] as const) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // st 0A is LISTEN; the inode is the tenth field.
      if (fields.length < 10 || fields[3] !== '0A' || !inodes.has(fields[9]!)) continue;
      const [hex, port] = fields[1]!.split(':');
      found.add(`${addressOf(hex!, v6)}:${Number.parseInt(port!, 16)}`);
    }
  }
  return [...found].sort();
}

/** Node's own default for a listen() with no host: '::' where IPv6 is available, else '0.0.0.0'. */
async function nodeDefaultHost(): Promise<string> {
  const server = net.createServer().listen(0);
  await new Promise((resolve) => server.once('listening', resolve));
  const { address } = server.address() as net.AddressInfo;
  server.close();
  return address;
}

function launch(t: Test, env: NodeJS.ProcessEnv, args: string[] = [], host: string | null = null) {
  return startLauncher(t, [app, '--workers', '2', ...args], env, { host });
}

function expectListening(t: Test, launcher: RunningLauncher, expected: string[], what: string): void {
  t.strictSame(listeningOf(launcher.child.pid!), expected, what);
}

const skip = !linux && 'reads the sockets from /proc';

for (const transport of allTransports) {
  t.test(`${transport}: an app on 127.0.0.1 is reachable there alone`, { skip }, async (t) => {
    const launcher = await launch(t, { APP_HOST: '127.0.0.1' }, ['--transport', transport]);
    const { port } = launcher;
    t.match(launcher.stdout(), `socketnaut: http://127.0.0.1:${port} · 2 workers · transport ${transport}`);
    expectListening(t, launcher, [`127.0.0.1:${port}`], 'the process listens on 127.0.0.1 only');
    const seen = JSON.parse((await request(port, { localAddress: '127.0.0.9' })).text);
    t.equal(seen.remoteAddress, '127.0.0.9', 'the client is seen');
    t.strictSame(seen.addresses, [{ address: '127.0.0.1', family: 'IPv4', port }], 'address() is the one bound');
  });
}

t.test('an app on 0.0.0.0 sees an IPv4 client as IPv4, and nothing binds IPv6', { skip }, async (t) => {
  const launcher = await launch(t, { APP_HOST: '0.0.0.0' });
  expectListening(t, launcher, [`0.0.0.0:${launcher.port}`], 'the process listens on 0.0.0.0 only');
  const seen = JSON.parse((await request(launcher.port, { localAddress: '127.0.0.9' })).text);
  t.equal(seen.remoteAddress, '127.0.0.9', "req.socket.remoteAddress, not '::ffff:127.0.0.9'");
});

t.test("Fastify on 0.0.0.0: request.ip is the client's IPv4 address", async (t) => {
  const launcher = await startLauncher(t, [appPath('fastify-app.js'), '--workers', '2'], {}, { host: null });
  const seen = await ask(launcher.port, { address: '127.0.0.9', port: 0 });
  t.equal(seen.ip, '127.0.0.9', 'request.ip');
  t.equal(seen.remoteAddress, '127.0.0.9', 'request.socket.remoteAddress');
});

t.test('an app on ::1 is on IPv6 alone', { skip: skip || (!hasIpv6 && 'needs IPv6') }, async (t) => {
  const launcher = await launch(t, { APP_HOST: '::1' });
  const { port } = launcher;
  t.match(launcher.stdout(), `socketnaut: http://[::1]:${port} ·`);
  expectListening(t, launcher, [`[::1]:${port}`], 'the process listens on ::1 only');
  const seen = JSON.parse((await request(port, { host: '::1' })).text);
  t.equal(seen.remoteAddress, '::1');
  await t.rejects(request(port), { code: 'ECONNREFUSED' }, '127.0.0.1 is refused');
});

t.test('an app on :: with ipv6Only listens on IPv6 alone', { skip: skip || (!hasIpv6 && 'needs IPv6') }, async (t) => {
  const launcher = await launch(t, { APP_HOST: '::', APP_IPV6_ONLY: '1' });
  const seen = JSON.parse((await request(launcher.port, { host: '::1' })).text);
  t.equal(seen.remoteAddress, '::1');
  await t.rejects(request(launcher.port), { code: 'ECONNREFUSED' }, 'IPv4 is refused');
});

t.test("an app that names no host gets Node's default", { skip }, async (t) => {
  const host = await nodeDefaultHost();
  const launcher = await launch(t, {});
  const where = host.includes(':') ? `[${host}]` : host;
  expectListening(t, launcher, [`${where}:${launcher.port}`], `the process listens on ${host}, as node would`);
  t.match(launcher.stdout(), `socketnaut: http://${where}:${launcher.port} ·`);
});

t.test('--host overrides the app', { skip }, async (t) => {
  const launcher = await launch(t, { APP_HOST: '0.0.0.0' }, [], '127.0.0.2');
  expectListening(t, launcher, [`127.0.0.2:${launcher.port}`], 'the process listens where --host says');
  const seen = JSON.parse((await request(launcher.port, { host: '127.0.0.2' })).text);
  t.strictSame(seen.addresses, [{ address: '127.0.0.2', family: 'IPv4', port: launcher.port }]);
});

t.test('a second server on the public port binds its own address too', { skip }, async (t) => {
  const launcher = await launch(t, { APP_HOST: '127.0.0.1', APP_ALSO_HOST: '127.0.0.2' });
  const { port } = launcher;
  expectListening(t, launcher, [`127.0.0.1:${port}`, `127.0.0.2:${port}`], 'both addresses, no other');
  for (const host of ['127.0.0.1', '127.0.0.2']) {
    const seen = JSON.parse((await request(port, { host })).text);
    t.strictSame(
      seen.addresses,
      [
        { address: '127.0.0.1', family: 'IPv4', port },
        { address: '127.0.0.2', family: 'IPv4', port },
      ],
      `through ${host}: each server's address() is its own`,
    );
  }
});

t.test("the port in use on the app's host ends the start with the launcher's error", async (t) => {
  const blocker = net.createServer().listen(0, '127.0.0.1');
  t.teardown(() => blocker.close());
  await new Promise((resolve) => blocker.once('listening', resolve));
  const { port } = blocker.address() as net.AddressInfo;
  const result = await runLauncher(['--port', String(port), '--workers', '2', app], { APP_HOST: '127.0.0.1' });
  t.equal(result.code, 1, 'exit code 1');
  t.match(result.stderr, `socketnaut: The address 127.0.0.1:${port} is already in use`);
  t.notMatch(result.stdout, /socketnaut: \w+:\/\//, 'no start-up line');
});

t.test('the start-up line names a scheme only for an HTTP server', async (t) => {
  for (const [kind, scheme] of [
    ['net', 'tcp'],
    ['http2-stream', 'tcp'],
    ['http', 'http'],
  ]) {
    const launcher = await launch(t, { APP_HOST: '127.0.0.1', SERVER_KIND: kind });
    t.match(launcher.stdout(), `socketnaut: ${scheme}://127.0.0.1:${launcher.port} ·`, kind);
    launcher.child.kill('SIGTERM');
    t.equal((await launcher.exited).code, 0, `${kind}: stopped`);
  }
});
