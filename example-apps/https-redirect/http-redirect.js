import http from 'node:http';
import { workerData } from 'node:worker_threads';
import { createServiceAgent } from 'socketnaut';

const { host, httpsPort } = workerData;

const server = http.createServer((req, res) => {
  // The host the client asked for, so that a redirect from localhost stays on localhost.
  const hostname = (req.headers.host && URL.parse(`http://${req.headers.host}`)?.hostname) || host;
  res.writeHead(301, { location: `https://${hostname}:${httpsPort}${req.url}` });
  res.end();
});

createServiceAgent({ server });
server.listen();
