// An Express 5 app as an ES module, importing nothing of socketnaut, under the launcher.
import { testApp } from '../apps.ts';

testApp('express5-app.js', { ip: 'req.ip' });
