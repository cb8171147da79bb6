import net from 'node:net';
import { addressInfoOf, storedAddressInfo } from '../address-info.ts';
import { encodePreamble } from '../preamble.ts';
import type { DispatchOutcome, DispatchTarget, LatencyRecorder, Transport, TransportSettings } from './index.ts';

/**
 * Pipes bytes between the client and the worker over the worker's private Unix socket. Used when
 * TLS ends at the proxy or the runtime cannot move sockets between threads.
 */
export class PipeTransport implements Transport {
  readonly name = 'pipe';
  readonly #token: string;
  readonly #recordLatency: LatencyRecorder | undefined;

  constructor(settings: TransportSettings) {
    this.#token = settings.token;
    this.#recordLatency = settings.recordLatency;
  }

  dispatch(target: DispatchTarget, client: net.Socket, outcome: DispatchOutcome): void {
    // A client that reset before it was accepted has no address left to pass on.
    const info = storedAddressInfo(client) ?? addressInfoOf(client);
    if (!info || !target.pipePath) {
      outcome.dropped(target, client);
      return;
    }
    client.pause();
    // A reset before the upstream connects must not throw; the destroyed client is noticed on connect.
    client.on('error', ignoreError);
    const startedAt = this.#recordLatency ? performance.now() : 0;
    const upstream = net.connect({ path: target.pipePath, allowHalfOpen: true });
    const onConnectError = (): void => {
      upstream.destroy();
      outcome.refused(target, client);
    };
    upstream.once('error', onConnectError);
    upstream.once('connect', () => {
      upstream.off('error', onConnectError);
      if (client.destroyed) {
        upstream.destroy();
        outcome.dropped(target, client);
        return;
      }
      upstream.write(encodePreamble(this.#token, info, client.remoteAddress ?? ''));
      splice(client, upstream);
      this.#recordLatency?.((performance.now() - startedAt) / 1000);
    });
  }
}

function ignoreError(): void {}

// Each side's end is passed on as a half-close, so a reply can follow a client's FIN. An error, or a
// side that closes before its end arrived, tears down both.
function splice(client: net.Socket, upstream: net.Socket): void {
  client.allowHalfOpen = true;
  client.setNoDelay(true);
  const destroyBoth = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', destroyBoth);
  upstream.on('error', destroyBoth);
  client.on('close', () => {
    if (!client.readableEnded) upstream.destroy();
  });
  upstream.on('close', () => {
    if (!upstream.readableEnded) client.destroy();
  });
  client.pipe(upstream);
  upstream.pipe(client);
}
