// Session routing needs nothing of a reverse proxy in front: nginx with proxy_pass and the WebSocket
// headers from Socket.IO's docs, its upstream connections kept alive (so that one carries several
// clients' requests), and HAProxy in mode http.
import t, { type Test } from 'tap';
import { fixture } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';
import { freePort, skipUnlessInstalled, startHaproxy, startNginx } from '../services.ts';
import { type Chat, chat, everyoneHears, spread, upgraded } from '../socketio.ts';

const APP = fixture('socketio/app.js').pathname;
const CLIENTS = 20;

export function nginxConfig(port: number, upstreams: number[], balance = ''): string {
  return `
http {
  access_log off;
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream app {
    ${balance}
    ${upstreams.map((upstream) => `server 127.0.0.1:${upstream};`).join('\n    ')}
    keepalive 4;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header Host $host;
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
    }
  }
}`;
}

function haproxyHttpConfig(port: number, launcher: number): string {
  return `
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout tunnel 60s

frontend front
  bind 127.0.0.1:${port}
  default_backend launcher

backend launcher
  server s1 127.0.0.1:${launcher}
`;
}

async function clientsThrough(t: Test, port: number): Promise<Chat[]> {
  const chats = await Promise.all(Array.from({ length: CLIENTS }, () => chat(t, port)));
  await upgraded(chats);
  return chats;
}

t.test(
  'behind nginx proxy_pass, its upstream connections kept alive',
  { skip: skipUnlessInstalled('nginx') },
  async (t) => {
    const launcher = await startLauncher(t, [APP, '--workers', '2']);
    const port = await freePort();
    await startNginx(t, nginxConfig(port, [launcher.port]));
    const chats = await clientsThrough(t, port);
    const counts = spread(chats);
    t.equal(counts.size, 2, 'sessions on both workers');
    for (const [thread, count] of counts) t.ok(count >= CLIENTS / 4, `worker ${thread} holds ${count} of ${CLIENTS}`);
    await everyoneHears(t, chats, chats[0]!);
  },
);

t.test('behind HAProxy in mode http', { skip: skipUnlessInstalled('haproxy') }, async (t) => {
  const launcher = await startLauncher(t, [APP, '--workers', '2']);
  const port = await freePort();
  await startHaproxy(t, haproxyHttpConfig(port, launcher.port));
  const chats = await clientsThrough(t, port);
  t.equal(spread(chats).size, 2, 'sessions on both workers');
  await everyoneHears(t, chats, chats[0]!);
});
