import type net from 'node:net';

export type PrefixDecoded<T> =
  | { status: 'incomplete' }
  | { status: 'invalid'; reason: string }
  | ({ status: 'ok'; length: number } & T);

export type PrefixOutcome<T> = { status: 'invalid'; reason: string } | ({ status: 'ok'; length: number } & T);

/**
 * Reads what a peer sends first (a PROXY header, the pipe transport's preamble) from a socket that
 * nothing has read yet, until `decode` accepts or rejects it, or `deadlineMs` passes, or the peer
 * ends early. On success the bytes after the prefix are put back, for the server that reads next.
 */
export function readPrefix<T>(
  socket: net.Socket,
  decode: (data: Buffer) => PrefixDecoded<T>,
  deadlineMs: number,
  done: (outcome: PrefixOutcome<T>) => void,
): void {
  let received: Buffer = Buffer.alloc(0);
  let finished = false;
  const finish = (outcome: PrefixOutcome<T>): void => {
    if (finished) return;
    finished = true;
    clearTimeout(deadline);
    socket.off('readable', onReadable);
    socket.off('end', onEnd);
    socket.off('error', onError);
    socket.off('close', onEnd);
    if (outcome.status === 'ok' && received.length > outcome.length) socket.unshift(received.subarray(outcome.length));
    done(outcome);
  };
  const onReadable = (): void => {
    while (!finished) {
      const chunk = socket.read() as Buffer | null;
      if (chunk === null) break;
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const decoded = decode(received);
      if (decoded.status !== 'incomplete') finish(decoded);
    }
  };
  const onEnd = (): void => finish({ status: 'invalid', reason: 'the peer ended before the prefix was complete' });
  const onError = (err: Error): void => finish({ status: 'invalid', reason: err.message });
  const deadline = setTimeout(
    () => finish({ status: 'invalid', reason: `no complete prefix within ${deadlineMs} ms` }),
    deadlineMs,
  ).unref();
  socket.on('readable', onReadable);
  socket.on('end', onEnd);
  socket.on('error', onError);
  socket.on('close', onEnd);
}
