import { createRequire } from 'node:module';

// Loaded as require() loads them, because modules a worker imports (this package's index among
// them) must not import them: an ESM import reads every export, and node:http's WebSocket export
// loads undici, 5.5 MB in each thread (nodejs/node#59686); node:tls's loads its root certificates;
// node:fs's promises export loads fs/promises and readline.
const require = createRequire(import.meta.url);

export const loadHttp = (): typeof import('node:http') => require('node:http');
export const loadFs = (): typeof import('node:fs') => require('node:fs');
export const loadTls = (): typeof import('node:tls') => require('node:tls');
