// socketnaut for Express 4 and 5: `app.use(socketnaut())`, first in the middleware chain.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { addressInfo, markRequest, requestClientAddress, type ProxySocketAddressInfo } from './address.ts';
import { ERR_UNSUPPORTED_FRAMEWORK, describeArguments } from '../lib/errors.ts';

export type { ProxySocketAddressInfo };

declare module 'express-serve-static-core' {
  interface Request {
    /**
     * The client's IP address: the proxy's client in a socketnaut worker, the socket's peer otherwise.
     * Like Node's `remoteAddress`, undefined only on a Unix socket the app listens on itself.
     */
    clientAddress: string;
    /** Both ends of the client's connection: `remote` is the client, `local` the address it connected to. */
    proxySocketAddressInfo: ProxySocketAddressInfo;
  }
}

const PLUGIN = 'socketnaut/express';

// Koa calls middleware with (ctx, next) and Fastify plugins get (instance, options, done): neither
// passes a request with a socket, a response object and a next function.
function isExpressCall(req: unknown, res: unknown, next: unknown): boolean {
  return (
    typeof next === 'function' &&
    typeof req === 'object' &&
    req !== null &&
    typeof (req as Partial<Request>).socket === 'object' &&
    typeof res === 'object' &&
    res !== null &&
    typeof (res as Partial<Response>).setHeader === 'function'
  );
}

// `info` is undefined only for a Unix socket the app listens on itself: like Node's remoteAddress.
function decorate(req: Request, info: ProxySocketAddressInfo | undefined): void {
  req.clientAddress = requestClientAddress(req, info);
  req.proxySocketAddressInfo = info!;
}

/**
 * The middleware that gives every request its client's address as `req.clientAddress`, and both
 * ends of the connection as `req.proxySocketAddressInfo`. In a socketnaut worker these describe the
 * client of the proxy, not the proxy's own connection.
 */
export default function socketnaut(): RequestHandler {
  // `app.use(socketnaut)` would hand the factory a request: in Express it would never call next().
  // biome-ignore lint/complexity/noArguments: a rest parameter would change the function's length, which the framework reads
  if (arguments.length > 0) {
    throw new ERR_UNSUPPORTED_FRAMEWORK(
      PLUGIN,
      'as a middleware factory: app.use(socketnaut())',
      // biome-ignore lint/complexity/noArguments: a rest parameter would change the function's length, which the framework reads
      describeArguments(arguments),
    );
  }
  return function socketnautMiddleware(req: Request, res: Response, next: NextFunction): void {
    if (!isExpressCall(req, res, next)) {
      throw new ERR_UNSUPPORTED_FRAMEWORK(
        PLUGIN,
        'as Express middleware: app.use(socketnaut())',
        // biome-ignore lint/complexity/noArguments: a rest parameter would change the function's length, which the framework reads
        describeArguments(arguments),
      );
    }
    markRequest(req, PLUGIN);
    decorate(req, addressInfo(req.socket));
    next();
  };
}
