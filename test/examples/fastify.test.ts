import t from 'tap';
import { requestJSON, transports } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';
import { examplePath, readmeCommand, runAlone, untilAnswered } from '../examples.ts';

const app = examplePath('fastify/app.js');

for (const transport of transports) {
  t.test(`${transport}: the README's command answers with the client's own address`, async (t) => {
    const args = readmeCommand('fastify', 'npm run socketnaut --');
    t.equal(args[0], app);
    const launcher = await startLauncher(t, [...args, '--transport', transport]);
    t.match(launcher.stdout(), `transport ${transport}`);
    t.same(await requestJSON(launcher.port, { localAddress: '127.0.0.9' }), { hello: '127.0.0.9' });
    t.same(await requestJSON(launcher.port, { localAddress: '127.0.0.10' }), { hello: '127.0.0.10' });
  });
}

t.test('the same file runs alone, reading the address from the socket', async (t) => {
  const alone = await runAlone(t, app);
  const reply = await untilAnswered(alone, () => requestJSON(alone.port, { localAddress: '127.0.0.9' }));
  t.same(reply, { hello: '127.0.0.9' });
});
