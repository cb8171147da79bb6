// The one request handler every benchmarked server runs.
const SPIN_NS = 500_000n;

export function handle(req, res) {
  switch (req.url) {
    case '/spin': {
      const until = process.hrtime.bigint() + SPIN_NS;
      while (process.hrtime.bigint() < until);
      res.end('spun');
      return;
    }
    case '/echo':
      res.setHeader('content-type', 'application/octet-stream');
      req.pipe(res);
      return;
    default:
      res.end('hello world');
  }
}
