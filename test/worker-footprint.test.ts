import t from 'tap';
import { fixture, requestJSON, startProxy, transports } from './helpers.ts';

// An ESM import of node:http or node:tls reads every export: undici (5.5 MB per thread) or the root
// certificates. socketnaut must not bring them into a worker whose app does not use them.
for (const transport of transports) {
  for (const importIndex of [false, true]) {
    const app = importIndex ? 'an app that imports socketnaut' : 'an app';
    t.test(`${transport}: ${app} holds only the built-in modules it loads`, async (t) => {
      const { port } = await startProxy(t, {
        workerURL: fixture('builtins-loaded.js'),
        workerCount: 1,
        transport,
        workerOptions: { workerData: { importIndex } },
      });
      const loaded = await requestJSON(port);
      t.equal(loaded.http, true, 'the app served through node:http');
      t.equal(loaded.undici, false, 'undici was not loaded');
      t.equal(loaded.tls, false, 'node:tls was not loaded');
    });
  }
}
