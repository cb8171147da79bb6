import http from 'node:http';
import os from 'node:os';
import { threadId } from 'node:worker_threads';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import { Server } from 'socket.io';
import socketnaut from 'socketnaut/express';

// Once connected, ride out a Redis restart; at start-up, fail at once rather than wait for a Redis
// that is not there.
let connected = false;
const pubClient = createClient({
  url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  socket: { reconnectStrategy: (retries, cause) => (connected ? Math.min(50 * 2 ** retries, 2000) : cause) },
});
const subClient = pubClient.duplicate();
for (const client of [pubClient, subClient]) client.on('error', (err) => console.error(`redis: ${err.message}`));
await Promise.all([pubClient.connect(), subClient.connect()]);
connected = true;

const page = `<!doctype html>
<title>chat</title>
<ul id="messages"></ul>
<form id="form"><input id="input" autocomplete="off" autofocus><button>Send</button></form>
<script src="/socket.io/socket.io.js"></script>
<script>
  const socket = io();
  const show = (text) => document.getElementById('messages').append(Object.assign(document.createElement('li'), { textContent: text }));
  socket.on('welcome', ({ address, server, worker }) => show('connected as ' + address + ' to ' + server + ', worker ' + worker));
  socket.on('chat message', ({ from, text }) => show(from + ': ' + text));
  document.getElementById('form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = document.getElementById('input');
    if (input.value) socket.emit('chat message', input.value, () => {});
    input.value = '';
  });
</script>
`;

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(page);
});

const io = new Server(server, { adapter: createAdapter(pubClient, subClient) });
// Sets req.clientAddress on every Engine.IO request, the handshake included: the client's address,
// not the launcher's, nor a balancer's that sends a PROXY header.
io.engine.use(socketnaut());

// Names this process: all the workers of one launcher share it, another host's launcher does not.
const serverName = `${os.hostname()}/${process.pid}`;

io.on('connection', (socket) => {
  const from = socket.request.clientAddress;
  socket.emit('welcome', { id: socket.id, address: from, server: serverName, worker: threadId });
  socket.on('chat message', (text, ack) => {
    if (typeof ack !== 'function') return;
    if (typeof text !== 'string' || text.length === 0 || text.length > 1000) {
      ack({ ok: false, error: 'a message is a string of 1 to 1000 characters' });
      return;
    }
    // Through the Redis adapter, this reaches the clients of every worker of every host.
    io.emit('chat message', { from, text, server: serverName });
    ack({ ok: true });
  });
});

server.on('close', () => Promise.all([pubClient.close(), subClient.close()]).catch(() => {}));
server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1');
