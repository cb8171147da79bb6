import fs from 'node:fs';
import https from 'node:https';
import { createServiceAgent } from 'socketnaut';

const tls = {
  key: fs.readFileSync(new URL('../certs/key.pem', import.meta.url)),
  cert: fs.readFileSync(new URL('../certs/cert.pem', import.meta.url)),
};

const server = https.createServer(tls, (req, res) => {
  const { remote } = agent.requestProxySocketAddressInfo(req.socket);
  res.setHeader('content-type', 'text/plain');
  res.end(`Hello over HTTPS, ${remote.address}\n`);
});

const agent = createServiceAgent({ server });
server.listen();
