import http from 'node:http';
import t from 'tap';
import { connectOutcome, fixture, transports } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';

const IN_FLIGHT = 100;

function streamRequest(port: number): { headers: Promise<void>; body: Promise<string> } {
  let onHeaders!: () => void;
  const headers = new Promise<void>((resolve) => (onHeaders = resolve));
  const body = new Promise<string>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/stream?ms=1500', agent: false }, (res) => {
      onHeaders();
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve(text));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  return { headers, body };
}

for (const transport of transports) {
  t.test(`${transport}: SIGTERM lets ${IN_FLIGHT} in-flight requests finish, then exits 0`, async (t) => {
    const launcher = await startLauncher(t, [
      '--workers',
      '2',
      '--transport',
      transport,
      fixture('plain-app.js').pathname,
    ]);
    const requests = Array.from({ length: IN_FLIGHT }, () => streamRequest(launcher.port));
    await Promise.all(requests.map((r) => r.headers));

    launcher.child.kill('SIGTERM');
    const bodies = await Promise.all(requests.map((r) => r.body));
    t.equal(bodies.filter((body) => /^done \d+$/.test(body)).length, IN_FLIGHT, 'every response completed');
    t.equal(await connectOutcome(launcher.port), 'ECONNREFUSED', 'no new connections once stopping');
    const { code } = await launcher.exited;
    t.equal(code, 0);
  });
}
