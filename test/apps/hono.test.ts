// A Hono app on @hono/node-server as an ES module, importing nothing of socketnaut, under the launcher.
import { testApp } from '../apps.ts';

testApp('hono-app.js', {
  ip: 'getConnInfo(c).remote.address',
  extra: (t, seen, client, what) =>
    t.equal(seen.connInfoPort, client.port, `${what}: getConnInfo(c).remote.port is the client's port`),
});
