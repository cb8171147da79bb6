import type net from 'node:net';
import type tls from 'node:tls';
import type { Dispatcher } from './dispatcher.ts';

/**
 * Where TLS ends at the proxy, its connections are counted against the limits from their TCP accept,
 * and each handshake gets `timeout` ms. Counted only once secure, a flood of connections that never
 * send a ClientHello would hold descriptors past every limit until Node's own 120 s deadline.
 */
export function guardHandshakes(server: tls.Server, dispatcher: Dispatcher, timeout: number): void {
  // The TLS socket and the TCP socket under it name the same connection by their addresses.
  const handshaking = new Map<string, net.Socket>();
  server.on('connection', (tcp: net.Socket) => {
    if (!dispatcher.admitBeforeHandshake(tcp)) {
      tcp.destroy();
      return;
    }
    const key = connectionKey(tcp);
    handshaking.set(key, tcp);
    // Nothing reads the TCP socket itself once TLS wraps it, so its idle timer runs from the accept.
    tcp.setTimeout(timeout, () => tcp.destroy());
    tcp.once('close', () => {
      if (handshaking.get(key) !== tcp) return;
      handshaking.delete(key);
      dispatcher.handshakeAbandoned(tcp);
    });
  });
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    const key = connectionKey(socket);
    const tcp = handshaking.get(key);
    if (!tcp) {
      socket.destroy();
      return;
    }
    handshaking.delete(key);
    tcp.setTimeout(0);
    dispatcher.onSecureConnection(socket);
  });
}

function connectionKey(socket: net.Socket): string {
  return `${socket.remoteAddress} ${socket.remotePort} ${socket.localAddress} ${socket.localPort}`;
}
