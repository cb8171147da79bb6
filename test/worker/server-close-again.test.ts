// A worker's server only seems to listen; its close() must answer as a real server's does, a second
// call included: Apollo Server's drain closes the server after the launcher has, then waits for that
// close()'s callback before it runs its plugins' serverWillStop and signals itself.
import { once } from 'node:events';
import net from 'node:net';
import t from 'tap';

const { seemToListen } = (await import(
  new URL('../../dist/lib/protocol/seeming-listen.js', import.meta.url).href
)) as typeof import('../../lib/protocol/seeming-listen.ts');

/** What close(callback) gives its callback on a server that was closed already and has drained. */
function closeAgain(server: net.Server): Promise<unknown> {
  return new Promise((resolve) => server.close(resolve));
}

t.test("close() after 'close': its callback gets ERR_SERVER_NOT_RUNNING, as from a real server", async (t) => {
  const real = net.createServer().listen(0, '127.0.0.1');
  await once(real, 'listening');
  real.close();
  await once(real, 'close');
  const fromNode = (await closeAgain(real)) as NodeJS.ErrnoException;
  t.equal(fromNode?.code, 'ERR_SERVER_NOT_RUNNING', "Node's own answer");

  const seeming = new net.Server();
  seemToListen(seeming, (closed) => process.nextTick(closed)).listen({ address: '127.0.0.1', family: 'IPv4', port: 1 });
  await once(seeming, 'listening');
  seeming.close();
  await once(seeming, 'close');
  const fromSeeming = (await closeAgain(seeming)) as NodeJS.ErrnoException;
  t.equal(fromSeeming?.code, fromNode.code, 'the same code');
  t.equal(fromSeeming.message, fromNode.message, 'the same message');
});

t.test('close() while the first close() waits for connections: both callbacks run once they end', async (t) => {
  let drain = (): void => {};
  const seeming = new net.Server();
  seemToListen(seeming, (closed) => {
    drain = closed;
  }).listen({ address: '127.0.0.1', family: 'IPv4', port: 1 });
  await once(seeming, 'listening');
  const first = new Promise((resolve) => seeming.close(resolve));
  const second = closeAgain(seeming);
  drain();
  t.equal(await first, undefined, 'the first close() is called back without an error');
  t.equal(((await second) as NodeJS.ErrnoException)?.code, 'ERR_SERVER_NOT_RUNNING', "the second with Node's error");
});
