import net from 'node:net';

interface HandleOwner {
  _handle: object | null;
}

/**
 * Node rebuilds a socket that arrives through postMessage() in a way that leaves the object in V8's
 * dictionary mode, so every property read on it in node:http and node:stream takes the slow path:
 * about 8 % of a worker's CPU under keep-alive load. Moving its handle into a socket constructed the
 * way a listening server constructs one gives an ordinary fast object, in the same state: open, not
 * yet reading.
 */
export function adoptMovedSocket(moved: net.Socket): net.Socket {
  const owner = moved as unknown as HandleOwner;
  const handle = owner._handle;
  if (handle === null) return moved;
  owner._handle = null;
  return new net.Socket({
    handle,
    allowHalfOpen: moved.allowHalfOpen,
    readable: true,
    writable: true,
    manualStart: true,
  } as net.SocketConstructorOpts);
}
