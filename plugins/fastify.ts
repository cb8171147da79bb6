// socketnaut for Fastify 5: `await app.register(socketnaut)`.
import type { FastifyInstance, FastifyPluginCallback, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { agentFor } from '../lib/worker/service-agent.ts';
import { getWorkerContext } from '../lib/worker/context.ts';
import { addressInfo, requestClientAddress, type ProxySocketAddressInfo } from './address.ts';
import { ERR_PLUGIN_REGISTERED_TWICE, ERR_UNSUPPORTED_FRAMEWORK, describeArguments } from '../lib/errors.ts';

export type { ProxySocketAddressInfo };

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The client's IP address: the proxy's client in a socketnaut worker, the socket's peer otherwise.
     * Like Node's `remoteAddress`, undefined only on a Unix socket the app listens on itself.
     */
    readonly clientAddress: string;
    /** Both ends of the client's connection: `remote` is the client, `local` the address it connected to. */
    readonly proxySocketAddressInfo: ProxySocketAddressInfo;
  }
}

const kRegistered = Symbol.for('socketnaut.fastify.registered');

function isFastify(value: unknown): value is FastifyInstance {
  const app = value as Partial<FastifyInstance> | null;
  return (
    typeof app === 'object' &&
    app !== null &&
    typeof app.decorateRequest === 'function' &&
    typeof app.addHook === 'function' &&
    typeof app.hasDecorator === 'function'
  );
}

// Getters rather than values set by a hook: they also work in hooks and plugins that run before ours.
// Like Node's remoteAddress, they are undefined only for a Unix socket the app listens on itself.
function proxySocketAddressInfo(this: FastifyRequest): ProxySocketAddressInfo {
  return addressInfo(this.raw.socket)!;
}

function clientAddress(this: FastifyRequest): string {
  return requestClientAddress(this.raw, addressInfo(this.raw.socket));
}

function socketnaut(fastify: FastifyInstance, _options: unknown, done: (err?: Error) => void): void {
  if (!isFastify(fastify)) {
    throw new ERR_UNSUPPORTED_FRAMEWORK(
      'socketnaut/fastify',
      'as a Fastify plugin: await app.register(socketnaut)',
      // biome-ignore lint/complexity/noArguments: a rest parameter would change the function's length, which the framework reads
      describeArguments(arguments),
    );
  }
  // Errors go to done(): avvio does not catch what a plugin throws once the app has booted.
  if (fastify.hasDecorator(kRegistered)) {
    done(new ERR_PLUGIN_REGISTERED_TWICE('socketnaut/fastify', 'register it once, on the root instance'));
    return;
  }
  try {
    fastify.decorate(kRegistered, true);
    fastify.decorateRequest('proxySocketAddressInfo', { getter: proxySocketAddressInfo });
    fastify.decorateRequest('clientAddress', { getter: clientAddress });
    // Claimed now, before listen() or any other server of the worker can become the proxied one;
    // fastify.listen() then goes through the takeover and opens no port.
    if (getWorkerContext()) agentFor(fastify.server, false);
  } catch (err) {
    done(err as Error);
    return;
  }
  done();
}

const plugin: FastifyPluginCallback = fp(socketnaut, { name: 'socketnaut', fastify: '5.x' });

export default plugin;
