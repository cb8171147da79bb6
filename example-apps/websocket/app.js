import http from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import { createServiceAgent } from 'socketnaut';

const server = http.createServer((req, res) => {
  res.writeHead(426, { 'content-type': 'text/plain' });
  res.end('This is a WebSocket chat: connect with a WebSocket client.\n');
});
const wss = new WebSocketServer({ server });

wss.on('connection', (ws, req) => {
  // Asked of the agent, not of the socket: with the pipe transport, the socket's peer is the launcher.
  const sender = agent.getProxySocketAddressInfo(req.socket)?.remote.address ?? 'unknown';
  ws.on('message', (data) => {
    const text = `${sender}: ${data}`;
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(text);
    }
  });
});

const agent = createServiceAgent({ server });
server.listen(Number(process.env.PORT ?? 3000));
