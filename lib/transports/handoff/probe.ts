import net from 'node:net';
import { once } from 'node:events';
import { MessageChannel } from 'node:worker_threads';

let probe: Promise<string | undefined> | undefined;

/**
 * Whether this runtime can move a TCP socket to another thread, found by trying it once on a
 * loopback connection. Resolves to undefined when it can, or to the reason it cannot.
 */
export function probeHandoff(): Promise<string | undefined> {
  probe ??= runProbe();
  return probe;
}

async function runProbe(): Promise<string | undefined> {
  const server = net.createServer({ pauseOnConnect: true });
  const { port1, port2 } = new MessageChannel();
  let client: net.Socket | undefined;
  try {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection');
    client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    client.on('error', () => {});
    const [socket] = (await accepted) as [net.Socket];
    try {
      port1.postMessage(socket, [socket as never]);
    } catch (err) {
      socket.destroy();
      return (err as Error).message;
    }
    const [moved] = (await once(port2, 'message')) as [net.Socket];
    moved.destroy();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    client?.destroy();
    port1.close();
    port2.close();
    server.close();
  }
}
