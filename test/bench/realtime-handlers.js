// The one Socket.IO app every realtime configuration runs: a client's 'broadcast' goes to every
// client (io.emit), and 'where' answers with the process and thread that serve the client.
import { threadId } from 'node:worker_threads';

export function serve(io) {
  io.on('connection', (socket) => {
    socket.on('where', (ack) => ack(`${process.pid}.${threadId}`));
    socket.on('broadcast', (message) => io.emit('broadcast', message));
  });
}
