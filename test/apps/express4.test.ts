// An Express 4 app in CommonJS, importing nothing of socketnaut, under the launcher.
import { testApp } from '../apps.ts';

testApp('express4-app.cjs', { ip: 'req.ip' });
