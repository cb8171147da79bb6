// A Koa 3 app as an ES module, importing nothing of socketnaut, under the launcher.
import { testApp } from '../apps.ts';

testApp('koa3-app.js', { ip: 'ctx.ip' });
