// A stopping worker's app hears the signal once the launcher has closed its keep-alive connections
// after their answers, so that an app's own drain (Apollo Server's) finds none it could cut with a
// request on its way (test/apps/apollo-reload.test.ts). A connection that stays open until the app
// closes it, as a WebSocket does, delays the signal 1 s at most.
import net from 'node:net';
import t from 'tap';
import { fixture, withDeadline } from '../helpers.ts';
import { startLauncher, transportsHere } from '../launcher.ts';

const app = fixture('tcp-closes-on-sigterm.js').pathname;

/** Connects and resolves once the app's greeting came, with everything the socket reads afterwards. */
async function connect(port: number): Promise<{ socket: net.Socket; read: () => string; ended: Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const ended = new Promise<void>((resolve) => socket.once('end', resolve));
  await withDeadline(
    new Promise<void>((resolve) => socket.on('data', () => text.includes('hello') && resolve())),
    5000,
    'the greeting',
  );
  return { socket, read: () => text, ended };
}

for (const transport of await transportsHere(['handoff', 'pipe'] as const)) {
  t.test(`${transport}: a connection the app closes on SIGTERM delays its signal 1 s at most`, async (t) => {
    const launcher = await startLauncher(t, [
      app,
      '--workers',
      '2',
      '--transport',
      transport,
      '--shutdown-timeout',
      '10000',
    ]);
    const client = await connect(launcher.port);
    t.teardown(() => client.socket.destroy());
    const stoppedAt = performance.now();
    launcher.child.kill('SIGTERM');
    await withDeadline(client.ended, 5000, 'the app closing its client');
    const waited = performance.now() - stoppedAt;
    t.match(client.read(), /bye/, 'the app heard SIGTERM and said bye');
    t.ok(waited < 3000, `it heard it ${Math.round(waited)} ms after the stop, not at the shutdown timeout`);
    t.equal((await launcher.exited).code, 0, 'exit code 0');
  });
}
