import t from 'tap';
import { fixture, requestJSON, startProxy, transports } from './helpers.ts';

// An ESM import of node:http or node:tls reads every export: undici (5.5 MB per thread) or the root
// certificates. socketnaut's worker side must not bring them into an app that does not use them.
for (const transport of transports) {
  t.test(`${transport}: a worker holds only the built-in modules its app loads`, async (t) => {
    const { port } = await startProxy(t, { workerURL: fixture('builtins-loaded.js'), workerCount: 1, transport });
    const loaded = await requestJSON(port);
    t.equal(loaded.transport, true, 'the app served through node:http');
    t.equal(loaded.undici, false, 'undici was not loaded');
    t.equal(loaded.tls, false, 'node:tls was not loaded');
  });
}
