// A plain Socket.IO app that knows nothing of socketnaut: run alone (`PORT=3000 node realtime-app.js`)
// and under the launcher (`socketnaut realtime-app.js`).
import http from 'node:http';
import { Server } from 'socket.io';
import { serve } from './realtime-handlers.js';

const server = http.createServer();
serve(new Server(server));
server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => console.log('READY'));
