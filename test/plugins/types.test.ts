// Type-level checks of the plugins' request augmentations: `npx tsc -p test/tsconfig.json` is the
// real test; running the file only shows the handlers are ordinary code.
import t from 'tap';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type Koa from 'koa';
import type express from 'express';
import fastifySocketnaut, { type ProxySocketAddressInfo } from 'socketnaut/fastify';
import koaSocketnaut from 'socketnaut/koa';
import expressSocketnaut from 'socketnaut/express';
import type { ProxySocketAddressInfo as LibProxySocketAddressInfo } from 'socketnaut';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

const sameInfo: Equal<ProxySocketAddressInfo, LibProxySocketAddressInfo> = true;

// Fastify: readonly getters on the request.
const fastifyAddress: Equal<FastifyRequest['clientAddress'], string> = true;
const fastifyInfo: Equal<FastifyRequest['proxySocketAddressInfo'], ProxySocketAddressInfo> = true;

async function fastifyApp(app: FastifyInstance): Promise<void> {
  await app.register(fastifySocketnaut);
  app.get('/', (req) => {
    const port: number = req.proxySocketAddressInfo.remote.port;
    // @ts-expect-error the address is set by the plugin, not by handlers
    req.clientAddress = 'x';
    return { hello: req.clientAddress.toUpperCase(), port };
  });
}

// Koa: on the context and on ctx.request.
const koaContextAddress: Equal<Koa.Context['clientAddress'], string> = true;
const koaRequestAddress: Equal<Koa.Request['clientAddress'], string> = true;
const koaContextInfo: Equal<Koa.Context['proxySocketAddressInfo'], ProxySocketAddressInfo> = true;
const koaRequestInfo: Equal<Koa.Request['proxySocketAddressInfo'], ProxySocketAddressInfo> = true;

function koaApp(app: Koa): void {
  const middleware: Koa.Middleware = koaSocketnaut();
  app.use(middleware);
  app.use((ctx) => {
    ctx.body = {
      hello: ctx.clientAddress,
      again: ctx.request.clientAddress,
      port: ctx.proxySocketAddressInfo.local.port,
    };
  });
}

// Express: on the request.
const expressAddress: Equal<express.Request['clientAddress'], string> = true;
const expressInfo: Equal<express.Request['proxySocketAddressInfo'], ProxySocketAddressInfo> = true;

function expressApp(app: express.Express): void {
  const middleware: express.RequestHandler = expressSocketnaut();
  app.use(middleware);
  app.get('/', (req, res) => {
    const family: string = req.proxySocketAddressInfo.remote.family;
    res.json({ hello: req.clientAddress.toUpperCase(), family });
  });
}

// @ts-expect-error the address is a string
const notANumber: Equal<express.Request['clientAddress'], number> = true;

t.test('the augmented types are the ones the plugins fill in', async (t) => {
  t.same(
    [
      sameInfo,
      fastifyAddress,
      fastifyInfo,
      koaContextAddress,
      koaRequestAddress,
      koaContextInfo,
      koaRequestInfo,
      expressAddress,
      expressInfo,
    ],
    Array(9).fill(true),
  );
  t.equal(notANumber, true);
  // @ts-expect-error the factories take no options
  t.throws(() => koaSocketnaut({}), { code: 'SOCKETNAUT_ERR_UNSUPPORTED_FRAMEWORK' });
  // @ts-expect-error the factories take no options
  t.throws(() => expressSocketnaut({}), { code: 'SOCKETNAUT_ERR_UNSUPPORTED_FRAMEWORK' });
  t.equal(typeof fastifyApp, 'function');
  t.equal(typeof koaApp, 'function');
  t.equal(typeof expressApp, 'function');
});
