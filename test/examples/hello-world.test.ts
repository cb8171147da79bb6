import t from 'tap';
import { request } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';
import { examplePath, readmeCommand, runAlone, untilAnswered } from '../examples.ts';

t.test("the README's command serves Hello, World! on four workers", async (t) => {
  const args = readmeCommand('hello-world', 'npm run socketnaut --');
  t.same(args, [examplePath('hello-world/app.js'), '--workers', '4']);
  const launcher = await startLauncher(t, args);
  t.match(launcher.stdout(), /· 4 workers ·/);
  for (let i = 0; i < 4; i++) {
    const reply = await request(launcher.port);
    t.equal(reply.status, 200);
    t.equal(reply.text, 'Hello, World!');
    t.match(reply.headers['content-type'], /^text\/plain/);
  }
});

t.test('the same file runs alone', async (t) => {
  const alone = await runAlone(t, examplePath('hello-world/app.js'));
  const reply = await untilAnswered(alone, () => request(alone.port));
  t.equal(reply.status, 200);
  t.equal(reply.text, 'Hello, World!');
});
