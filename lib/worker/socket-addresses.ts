import net from 'node:net';
import { storedAddressInfo } from '../protocol/address-info.ts';

type NameGetter = (this: net.Socket) => object;
type NamedSocket = net.Socket & { _getpeername: NameGetter; _getsockname: NameGetter };

/**
 * Makes every socket a transport delivered in this worker describe the client's connection, as a
 * socket accepted by a plain server would: remoteAddress, remotePort and remoteFamily are the client's
 * (the one a PROXY header named, or the far end of a piped connection), and localAddress, localPort
 * and address() the public end it connected to. Node's getters all read these two methods, on the
 * socket and on a TLS socket wrapping it, so frameworks' `ip` and any library reading the socket
 * see the client. A socket without stored info is untouched.
 */
export function reportClientAddresses(): void {
  const prototype = net.Socket.prototype as NamedSocket;
  const peerName = prototype._getpeername;
  const sockName = prototype._getsockname;
  prototype._getpeername = function (this: net.Socket) {
    return storedAddressInfo(this)?.remote ?? peerName.call(this);
  };
  prototype._getsockname = function (this: net.Socket) {
    return storedAddressInfo(this)?.local ?? sockName.call(this);
  };
}
