// The realtime app on node:cluster as Socket.IO documents it: @socket.io/sticky routes each request
// by its session in the primary, and @socket.io/cluster-adapter carries broadcasts through the
// primary. node realtime-cluster.js <port> <workers>; prints "READY" once every worker has set up.
import cluster from 'node:cluster';
import http from 'node:http';
import { createAdapter, setupPrimary } from '@socket.io/cluster-adapter';
import { setupMaster, setupWorker } from '@socket.io/sticky';
import { Server } from 'socket.io';
import { serve } from './realtime-handlers.js';

const [port, workers] = process.argv.slice(-2).map(Number);

if (cluster.isPrimary) {
  const httpServer = http.createServer();
  setupMaster(httpServer, { loadBalancingMethod: 'least-connection' });
  setupPrimary();
  cluster.setupPrimary({ serialization: 'advanced' });
  let ready = 0;
  cluster.on('message', (_worker, message) => {
    if (message === 'bench:ready' && ++ready === workers) console.log('READY');
  });
  httpServer.listen(port, '127.0.0.1', () => {
    for (let i = 0; i < workers; i++) cluster.fork();
  });
} else {
  const httpServer = http.createServer();
  const io = new Server(httpServer);
  io.adapter(createAdapter());
  setupWorker(io);
  serve(io);
  process.send('bench:ready');
}
