import t from 'tap';
import { request, requestJSON, transports } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';
import { examplePath } from '../examples.ts';
import { freePort, haproxyConfig, skipUnlessInstalled, startHaproxy, startNginx } from '../services.ts';

const app = examplePath('express/app.js');

for (const transport of transports) {
  t.test(
    `${transport}: behind HAProxy, the app sees the client HAProxy accepted`,
    { skip: skipUnlessInstalled('haproxy') },
    async (t) => {
      const launcher = await startLauncher(t, [app, '--workers', '2', '--transport', transport, '--proxy-protocol']);
      t.match(launcher.stdout(), `transport ${transport}`);
      const [v2Port, v1Port] = [await freePort(), await freePort()];
      await startHaproxy(t, haproxyConfig(launcher.port, { v1: v1Port, v2: v2Port }));

      t.same(await requestJSON(v2Port, { localAddress: '127.0.0.23' }), { hello: '127.0.0.23' }, 'send-proxy-v2');
      t.same(
        await requestJSON(v2Port, { localAddress: '127.0.0.24' }),
        { hello: '127.0.0.24' },
        'send-proxy-v2, another client',
      );
      t.same(await requestJSON(v1Port, { localAddress: '127.0.0.23' }), { hello: '127.0.0.23' }, 'send-proxy');
      t.same(
        await requestJSON(v1Port, { localAddress: '127.0.0.25' }),
        { hello: '127.0.0.25' },
        'send-proxy, another client',
      );
      // The launcher itself wants the header: without one, the app must not answer.
      await t.rejects(
        request(launcher.port, { localAddress: '127.0.0.23' }),
        'a direct request without a header is refused',
      );
    },
  );

  t.test(
    `${transport}: behind nginx with proxy_protocol on, the app sees the client nginx accepted`,
    { skip: skipUnlessInstalled('nginx') },
    async (t) => {
      const launcher = await startLauncher(t, [app, '--workers', '2', '--transport', transport, '--proxy-protocol']);
      const port = await freePort();
      await startNginx(
        t,
        `
stream {
  server {
    listen 127.0.0.1:${port};
    proxy_pass 127.0.0.1:${launcher.port};
    proxy_protocol on;
  }
}`,
      );
      t.same(await requestJSON(port, { localAddress: '127.0.0.23' }), { hello: '127.0.0.23' });
      t.same(await requestJSON(port, { localAddress: '127.0.0.26' }), { hello: '127.0.0.26' });
    },
  );
}
