import t from 'tap';
import { fixture, requestJSON, startProxy, transports } from '../helpers.ts';

// An ESM import of node:http or node:tls reads every export: undici (5.5 MB per thread) or the root
// certificates. socketnaut must not bring them into a worker whose app does not use them, nor its
// logger (1.8 MB) into one whose app does not log through socketnaut.
const apps = [
  { imports: undefined, name: 'an app', logger: false },
  { imports: 'socketnaut/fastify', name: 'an app that imports the Fastify plugin', logger: false },
  { imports: 'socketnaut', name: 'an app that imports socketnaut', logger: true },
];

for (const transport of transports) {
  for (const { imports, name, logger } of apps) {
    t.test(`${transport}: ${name} holds only the modules it loads`, async (t) => {
      const { port } = await startProxy(t, {
        workerURL: fixture('builtins-loaded.js'),
        workerCount: 1,
        transport,
        workerOptions: { workerData: { imports } },
      });
      const loaded = await requestJSON(port);
      t.equal(loaded.http, true, 'the app served through node:http');
      t.equal(loaded.undici, false, 'undici was not loaded');
      t.equal(loaded.tls, false, 'node:tls was not loaded');
      t.equal(
        loaded.streamsLogger,
        logger,
        logger ? 'streams-logger was loaded, for the exported logger' : 'streams-logger was not loaded',
      );
    });
  }
}
