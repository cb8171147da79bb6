import { once } from 'node:events';
import net from 'node:net';
import { MessageChannel } from 'node:worker_threads';
import { probeHandoff } from '../handoff/probe.ts';

let probe: Promise<string | undefined> | undefined;

/**
 * Whether this platform and runtime can run the reuseport transport: SO_REUSEPORT spreading
 * connections (Linux), and moving both sockets and listeners between threads. Found by trying, once.
 * Resolves to undefined when they can, or to the reason they cannot.
 */
export function probeReuseport(): Promise<string | undefined> {
  probe ??= runProbe();
  return probe;
}

async function runProbe(): Promise<string | undefined> {
  // Elsewhere SO_REUSEPORT either is missing or does not spread connections among the listeners.
  if (process.platform !== 'linux') return `SO_REUSEPORT does not balance connections on ${process.platform}`;
  const handoff = await probeHandoff();
  if (handoff) return handoff;
  const server = net.createServer();
  const { port1, port2 } = new MessageChannel();
  try {
    server.listen({ port: 0, host: '127.0.0.1', reusePort: true });
    await once(server, 'listening');
    port1.postMessage(server, [server as never]);
    const [moved] = (await once(port2, 'message')) as [net.Server];
    moved.close();
    return undefined;
  } catch (err) {
    server.close();
    return `a listener cannot move to another thread (${(err as Error).message})`;
  } finally {
    port1.close();
    port2.close();
  }
}
