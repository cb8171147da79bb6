// Socket.IO as it loads in a socketnaut worker: the Engine.IO server it binds issues session ids that
// name this worker, so that any worker can send a request of the session to its owner (see
// worker/sessions.ts). An app's own generateId is kept, its ids carrying the owner in front.
import { issueSessionId, routeSessions } from '../worker/sessions.ts';

type GenerateId = (req: unknown) => string | Promise<string>;

interface Engine {
  generateId?: GenerateId;
}

const kNamed = Symbol.for('socketnaut.socketio.sessionIds');

interface SocketIO {
  Server?: { prototype: { bind?: (engine: Engine) => unknown; [kNamed]?: true } };
}

export function nameSessionsByWorker(socketio: SocketIO): void {
  const prototype = socketio.Server?.prototype;
  const bind = prototype?.bind;
  if (!prototype || typeof bind !== 'function' || prototype[kNamed]) return;
  prototype[kNamed] = true;
  routeSessions();
  prototype.bind = function bindNamingSessions(this: unknown, engine: Engine): unknown {
    const bound = bind.call(this, engine);
    nameSessions(engine);
    return bound;
  };
}

function nameSessions(engine: Engine): void {
  const original = engine.generateId;
  if (typeof original !== 'function') return;
  let own: GenerateId | undefined;
  const generateId: GenerateId = function generateId(this: Engine, req) {
    if (!own) return issueSessionId(req) ?? original.call(this, req);
    const id = own.call(this, req);
    return typeof id === 'string'
      ? (issueSessionId(req, id) ?? id)
      : id.then((value) => issueSessionId(req, value) ?? value);
  };
  Object.defineProperty(engine, 'generateId', {
    configurable: true,
    enumerable: true,
    get: () => generateId,
    // `io.engine.generateId = ...`, as Socket.IO's docs show: the app's ids, still naming their owner.
    set: (value: GenerateId) => {
      own = value;
    },
  });
}
