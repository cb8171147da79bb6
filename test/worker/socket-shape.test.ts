import t from 'tap';
import { fixture, requestJSON, startProxy, transports } from '../helpers.ts';

// A socket rebuilt by postMessage() is in V8's dictionary mode, which slows every property read on it
// in node:http; the worker must hand its server an ordinary socket instead.
for (const transport of transports) {
  t.test(`${transport}: the server's socket has fast properties`, async (t) => {
    const { port } = await startProxy(t, { workerURL: fixture('socket-shape.js'), workerCount: 1, transport });
    const first = await requestJSON(port);
    t.equal(first.fastProperties, true, 'the first connection');
    const second = await requestJSON(port);
    t.equal(second.fastProperties, true, 'a later connection');
  });
}
