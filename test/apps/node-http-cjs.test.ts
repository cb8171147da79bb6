// A plain node:http server in CommonJS, importing nothing of socketnaut, under the launcher.
import { testApp } from '../apps.ts';

testApp('node-http-app.cjs', { ip: 'req.socket.remoteAddress' });
