// A Koa 2 app in CommonJS, importing nothing of socketnaut, under the launcher.
import { testApp } from '../apps.ts';

testApp('koa2-app.cjs', { ip: 'ctx.ip' });
