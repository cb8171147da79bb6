import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { transports } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';
import { examplePath } from '../examples.ts';

const app = examplePath('express/app.js');
const HEADER = 'PROXY TCP4 192.0.2.1 127.0.0.1 5000 80\r\n';

/** A valid header, then a reset: what a balancer does when its client goes away, or after a health check. */
async function headerThenReset(port: number): Promise<void> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(HEADER);
  socket.resetAndDestroy();
  await once(socket, 'close');
}

function requestWithHeader(port: number, header: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let received = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
    socket.on('error', reject);
    socket.on('end', () => resolve(received));
    socket.on('connect', () => socket.end(`${header}GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
  });
}

for (const transport of transports) {
  t.test(
    `${transport}: clients that reset right after their PROXY header do not bring the launcher down`,
    async (t) => {
      const launcher = await startLauncher(t, [app, '--workers', '2', '--transport', transport, '--proxy-protocol']);
      for (let i = 0; i < 100 && launcher.child.exitCode === null; i++) await headerThenReset(launcher.port);
      const response = await requestWithHeader(launcher.port, HEADER).catch((err: Error) => `failed: ${err.message}`);
      const answered = t.match(
        response,
        /^HTTP\/1\.1 200 .*\{"hello":"192\.0\.2\.1"\}$/s,
        'the launcher still answers',
      );
      // Only to report why: a launcher that crashed needs a moment to be seen exiting.
      if (!answered) await Promise.race([launcher.exited, delay(2000)]);
      t.equal(
        launcher.child.exitCode,
        null,
        `the launcher is still running${launcher.child.exitCode === null ? '' : `:\n${launcher.stderr()}`}`,
      );
    },
  );
}
