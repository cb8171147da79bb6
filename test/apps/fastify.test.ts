// A Fastify 5 app as an ES module, importing nothing of socketnaut, under the launcher.
import { testApp } from '../apps.ts';

testApp('fastify-app.js', { ip: 'request.ip' });
