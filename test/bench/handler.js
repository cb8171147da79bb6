// The one request handler every benchmarked server runs.
const SPIN_NS = 500_000n;
// The balancer comparison: 5% of requests cost 20 ms of CPU, the rest 0.1 ms.
const HEAVY_SHARE = 0.05;
const HEAVY_NS = 20_000_000n;
const LIGHT_NS = 100_000n;

function spin(ns) {
  const until = process.hrtime.bigint() + ns;
  while (process.hrtime.bigint() < until);
}

export function handle(req, res) {
  switch (req.url) {
    case '/spin':
      spin(SPIN_NS);
      res.end('spun');
      return;
    case '/mixed':
      spin(Math.random() < HEAVY_SHARE ? HEAVY_NS : LIGHT_NS);
      res.end('mixed');
      return;
    case '/echo':
      res.setHeader('content-type', 'application/octet-stream');
      req.pipe(res);
      return;
    default:
      res.end('hello world');
  }
}
