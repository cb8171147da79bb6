// socketnaut for Koa 2 and 3: `app.use(socketnaut())`, first in the middleware chain.
import type { Middleware, ParameterizedContext } from 'koa';
import { addressInfo, markRequest, requestClientAddress, type ProxySocketAddressInfo } from './address.ts';
import { ERR_UNSUPPORTED_FRAMEWORK, describeArguments } from '../lib/errors.ts';

export type { ProxySocketAddressInfo };

interface AddressDecorations {
  /**
   * The client's IP address: the proxy's client in a socketnaut worker, the socket's peer otherwise.
   * Like Node's `remoteAddress`, undefined only on a Unix socket the app listens on itself.
   */
  clientAddress: string;
  /** Both ends of the client's connection: `remote` is the client, `local` the address it connected to. */
  proxySocketAddressInfo: ProxySocketAddressInfo;
}

declare module 'koa' {
  interface BaseContext extends AddressDecorations {}
  interface Request extends AddressDecorations {}
}

const PLUGIN = 'socketnaut/koa';

function isKoaCall(ctx: unknown, next: unknown): ctx is ParameterizedContext {
  const c = ctx as Partial<ParameterizedContext> | null;
  return (
    typeof next === 'function' &&
    typeof c === 'object' &&
    c !== null &&
    typeof c.req === 'object' &&
    typeof c.request === 'object' &&
    typeof c.app === 'object'
  );
}

// `info` is undefined only for a Unix socket the app listens on itself: like Node's remoteAddress.
function decorate(ctx: ParameterizedContext, info: ProxySocketAddressInfo | undefined): void {
  const address = requestClientAddress(ctx.req, info);
  ctx.clientAddress = address;
  ctx.proxySocketAddressInfo = info!;
  ctx.request.clientAddress = address;
  ctx.request.proxySocketAddressInfo = info!;
}

/**
 * The middleware that gives every request its client's address as `ctx.clientAddress` and
 * `ctx.request.clientAddress`, and both ends of the connection as `proxySocketAddressInfo`.
 * In a socketnaut worker these describe the client of the proxy, not the proxy's own connection.
 */
export default function socketnaut(): Middleware {
  // `app.use(socketnaut)` would hand the factory a context, and the request would skip the app.
  // biome-ignore lint/complexity/noArguments: a rest parameter would change the function's length, which the framework reads
  if (arguments.length > 0) {
    throw new ERR_UNSUPPORTED_FRAMEWORK(
      PLUGIN,
      'as a middleware factory: app.use(socketnaut())',
      // biome-ignore lint/complexity/noArguments: a rest parameter would change the function's length, which the framework reads
      describeArguments(arguments),
    );
  }
  return function socketnautMiddleware(ctx, next) {
    if (!isKoaCall(ctx, next)) {
      throw new ERR_UNSUPPORTED_FRAMEWORK(
        PLUGIN,
        'as Koa middleware: app.use(socketnaut())',
        // biome-ignore lint/complexity/noArguments: a rest parameter would change the function's length, which the framework reads
        describeArguments(arguments),
      );
    }
    markRequest(ctx.req, PLUGIN);
    decorate(ctx, addressInfo(ctx.req.socket));
    return next();
  };
}
