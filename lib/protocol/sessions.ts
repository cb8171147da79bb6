// Engine.IO sessions that name the worker owning them, so that any worker can send a request of a
// session to its owner without asking anyone; and where each worker takes connections from the others.
import path from 'node:path';

/** The Unix socket on which worker `id` takes piped connections, in the proxy's directory `dir`. */
export function pipePathIn(dir: string, id: number): string {
  return path.join(dir, `${id}.sock`);
}

/**
 * A session id for worker `owner`: its id in base 36, a dot, then `base` (an app's own id) or 120
 * random bits (as many as Engine.IO's own).
 */
export function sessionIdFor(owner: number, base = randomId()): string {
  return `${owner.toString(36)}.${base}`;
}

/** The worker a session id names, or undefined for an id that names none. */
export function ownerOfSession(sid: string): number | undefined {
  const dot = sid.indexOf('.');
  if (dot < 1 || dot > 8) return undefined;
  const owner = Number.parseInt(sid.slice(0, dot), 36);
  return Number.isSafeInteger(owner) ? owner : undefined;
}

/** The `sid` of a request's query (`/socket.io/?EIO=4&transport=polling&sid=...`), if it has one. */
export function sessionOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  let at = url.indexOf('sid=');
  // A parameter of its own: `...?sid=` or `...&sid=`, not `xsid=`.
  while (at !== -1 && url[at - 1] !== '?' && url[at - 1] !== '&') at = url.indexOf('sid=', at + 4);
  if (at === -1 || url.lastIndexOf('?', at) === -1) return undefined;
  const end = url.indexOf('&', at);
  return url.slice(at + 4, end === -1 ? undefined : end);
}

function randomId(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(15))).toString('base64url');
}
