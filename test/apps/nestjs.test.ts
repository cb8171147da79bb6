// A NestJS app as an ES module, importing nothing of socketnaut, under the launcher, on the Express
// adapter and on Fastify's. It listens on 0.0.0.0 and the launcher is given no host: the public port
// is bound where the app asks, so the client's address reaches req.ip in its IPv4 form, as it does
// without socketnaut (a dual-stack bind would give '::ffff:127.0.0.41').
import t from 'tap';
import { appPath, ask, distinctFreePorts, expectSeen } from '../apps.ts';
import { transports } from '../helpers.ts';
import { startLauncher, transportsHere } from '../launcher.ts';

const app = appPath('nestjs-app.js');

for (const adapter of ['express', 'fastify']) {
  for (const transport of await transportsHere(transports)) {
    t.test(`${transport}: NestJS on ${adapter} sees each client's IPv4 address in req.ip`, async (t) => {
      const launcher = await startLauncher(
        t,
        [app, '--workers', '2', '--transport', transport],
        { NEST_ADAPTER: adapter },
        { host: null },
      );
      t.match(launcher.stdout(), `socketnaut: http://0.0.0.0:${launcher.port} · 2 workers · transport ${transport}`);
      const ports = await distinctFreePorts(2);
      const clients = [
        { address: '127.0.0.41', port: ports[0]! },
        { address: '127.0.0.42', port: ports[1]! },
      ];
      const answers = await Promise.all(clients.map((client) => ask(launcher.port, client)));
      answers.forEach((seen, i) => {
        expectSeen(t, seen, clients[i]!, launcher.port, `client ${clients[i]!.address}`, { ip: 'req.ip' });
      });
    });
  }
}
