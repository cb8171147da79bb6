// Gives a Socket.IO server that an app leaves with the in-memory adapter socketnaut's, which spans the
// workers, whether the app requires or imports socket.io, and whichever copy it finds.
//
// A module hook (module.registerHooks, Node 22.15 and later) sees socket.io's main file as it is loaded,
// by require() and by import alike (its ESM wrapper imports the same CommonJS file), and adds one line
// at its end, which hands the module's exports and its own require() to ../socketio/default-adapter.ts.
// That patches Server.prototype.adapter, through which Server's constructor takes its adapter. Nothing of Socket.IO or of the adapter is loaded before the app loads socket.io itself.
import { loadFs } from '../builtins.ts';
import module from 'node:module';
import { fileURLToPath } from 'node:url';

/** The main file of every socket.io 4 package, wherever it is installed (npm, pnpm, yarn). */
const SOCKETIO_MAIN = /[\\/]socket\.io[\\/]dist[\\/]index\.js$/;
const kInstall = Symbol.for('socketnaut.socketio.install');

type Install = (socketio: unknown, socketioRequire: NodeJS.Require) => void;

/**
 * The text of a CommonJS file being loaded. Its source is left out when an import() loads it while
 * asynchronous hooks (module.register(), as tsx and APM agents use) are also in place.
 */
function sourceOf(url: string, source: module.LoadFnOutput['source'] | null): string {
  if (source == null) return loadFs().readFileSync(fileURLToPath(url), 'utf8');
  return typeof source === 'string' ? source : new TextDecoder().decode(source);
}

/**
 * Every Socket.IO server of the app issues session ids that name this worker, so that their requests
 * reach it from any worker; and, when `adapter` is set, one left with the in-memory adapter gets
 * socketnaut's.
 */
export function adaptSocketio(adapter: boolean): void {
  if (typeof module.registerHooks !== 'function') return;
  const require = module.createRequire(import.meta.url);
  const install: Install = (socketio, socketioRequire) => {
    const { nameSessionsByWorker } = require('../socketio/session-ids.js') as {
      nameSessionsByWorker: (socketio: unknown) => void;
    };
    nameSessionsByWorker(socketio);
    if (!adapter) return;
    const { installDefaultAdapter } = require('../socketio/default-adapter.js') as { installDefaultAdapter: Install };
    installDefaultAdapter(socketio, socketioRequire);
  };
  (globalThis as { [kInstall]?: Install })[kInstall] = install;
  const call = `\n;globalThis[Symbol.for(${JSON.stringify(kInstall.description)})]?.(module.exports, require);\n`;
  module.registerHooks({
    load(url, context, nextLoad) {
      const loaded = nextLoad(url, context);
      if (loaded.format !== 'commonjs' || !SOCKETIO_MAIN.test(url)) return loaded;
      return { ...loaded, source: `${sourceOf(url, loaded.source)}${call}` };
    },
  });
}
