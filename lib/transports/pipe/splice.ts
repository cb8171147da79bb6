import net from 'node:net';
import type tls from 'node:tls';
import { PIPE_TAKEN } from './preamble.ts';

/** Bytes read from a worker at a time; as nginx's proxy_buffer_size, it is also all a slow client can pin. */
const BUFFER_SIZE = 16 * 1024;
/** Free buffers kept for the next connections. */
const POOL_LIMIT = 256;
const pool: Buffer[] = [];

function takeBuffer(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(BUFFER_SIZE);
}

/**
 * Joins a client connection to its worker's Unix socket. The worker's bytes are read into one buffer
 * per connection and written to the client from there, and reading waits while a write of that buffer
 * is still pending: nothing is allocated per read, and a client that reads slowly makes the main
 * thread hold one buffer for it, no more (a TLS client, its high-water mark's worth of copies). The
 * client's bytes go the other way through pipe().
 */
export class Splice {
  readonly upstream: net.Socket;
  readonly client: net.Socket;
  #buffer: Buffer | undefined = takeBuffer();
  /** Reading waits for the client: its write still holds the buffer, or its buffer is full. */
  #waiting = false;
  /**
   * A TLS socket's write completes only once encrypted and sent, so waiting for each one would
   * stall reading: it is given copies, and its high-water mark sets the pace.
   */
  readonly #copying: boolean;
  /** The worker is done: what is left is read in full, copied, and passed on regardless of the client. */
  #finishing = false;
  /** What the client had taken at the last stall check, and for how many checks in a row it took nothing. */
  #taken = 0;
  #stalledChecks = 0;
  #closed = 0;
  /** Called with the worker's answer to the preamble, while that is awaited. */
  #answer: ((taken: boolean) => void) | undefined;
  #joined = false;

  constructor(client: net.Socket, path: string) {
    this.client = client;
    this.#copying = (client as Partial<tls.TLSSocket>).encrypted === true;
    this.upstream = net.connect({
      path,
      allowHalfOpen: true,
      // A buffer, not a function: a function would be called for a new buffer after every read.
      onread: { buffer: this.#buffer!, callback: this.#forward },
    });
  }

  /**
   * Calls `answered` with the worker's answer to the preamble: whether it takes the connection. A
   * worker that ends, fails or closes the connection first refuses it. Meanwhile the client stays
   * paused, and nothing of it is read or passed on.
   */
  awaitAnswer(answered: (taken: boolean) => void): void {
    const { upstream } = this;
    const refuse = (): void => settle(false);
    const settle = (taken: boolean): void => {
      this.#answer = undefined;
      upstream.off('end', refuse);
      upstream.off('error', refuse);
      upstream.off('close', refuse);
      answered(taken);
    };
    this.#answer = settle;
    upstream.once('end', refuse);
    upstream.once('error', refuse);
    upstream.once('close', refuse);
  }

  get joined(): boolean {
    return this.#joined;
  }

  /** Starts passing bytes both ways, once the worker has taken the connection. */
  join(): void {
    this.#joined = true;
    const { client, upstream } = this;
    client.allowHalfOpen = true;
    client.setNoDelay(true);
    // Each side's end is passed on as a half-close, so a reply can follow a client's FIN. An error, or
    // a side that closes before its end arrived, tears down both.
    client.on('error', this.destroy);
    upstream.on('error', this.destroy);
    client.on('close', () => {
      if (!client.readableEnded) upstream.destroy();
      this.#release();
    });
    upstream.on('close', () => {
      if (!upstream.readableEnded) client.destroy();
      this.#release();
    });
    upstream.once('end', () => client.end());
    client.pipe(upstream);
  }

  readonly destroy = (): void => {
    this.client.destroy();
    this.upstream.destroy();
  };

  /** Gives up on a splice that never joined: closes the upstream, then takes back its buffer. */
  abandon(): void {
    if (this.upstream.closed) this.#returnBuffer();
    else this.upstream.once('close', () => this.#returnBuffer());
    this.upstream.destroy();
  }

  /**
   * The worker closed its side: what is left of it is read in full from now on, even if the client
   * does not take it. Reading is on already unless it waits for the client, and #resume turns it
   * back on then.
   */
  finish(): void {
    if (this.#finishing) return;
    this.#finishing = true;
    this.#taken = this.#bytesTaken();
  }

  get finishing(): boolean {
    return this.#finishing;
  }

  /** For how many calls in a row, this one included, the client has taken no byte. */
  stalledChecks(): number {
    const taken = this.#bytesTaken();
    this.#stalledChecks = taken === this.#taken ? this.#stalledChecks + 1 : 0;
    this.#taken = taken;
    return this.#stalledChecks;
  }

  // bytesWritten counts what is still queued for the client too.
  #bytesTaken(): number {
    return this.client.bytesWritten - this.client.writableLength;
  }

  // The first byte from the worker is its answer; what follows it (an app that speaks first) is the
  // connection's own.
  readonly #forward = (length: number, buffer: Buffer): boolean => {
    const answer = this.#answer;
    if (answer) {
      const taken = buffer[0] === PIPE_TAKEN;
      answer(taken);
      return taken && (length === 1 || this.#pass(buffer.subarray(1, length)));
    }
    return this.#pass(buffer.subarray(0, length));
  };

  #pass(bytes: Buffer): boolean {
    const { client } = this;
    if (client.destroyed) return false;
    if (this.#finishing) {
      client.write(Buffer.from(bytes));
      return true;
    }
    if (this.#copying) {
      if (client.write(Buffer.from(bytes))) return true;
      this.#waiting = true;
      client.once('drain', this.#resume);
      return false;
    }
    client.write(bytes, this.#resume);
    // Written to the kernel at once: the buffer is free for the next read.
    if (client.writableLength === 0) return true;
    this.#waiting = true;
    return false;
  }

  readonly #resume = (): void => {
    if (!this.#waiting) return;
    this.#waiting = false;
    if (!this.upstream.destroyed) this.upstream.resume();
  };

  /** Both sockets are closed, so neither a read nor a write can touch the buffer any more. */
  #release(): void {
    if (++this.#closed === 2) this.#returnBuffer();
  }

  #returnBuffer(): void {
    if (!this.#buffer) return;
    if (pool.length < POOL_LIMIT) pool.push(this.#buffer);
    this.#buffer = undefined;
  }
}
