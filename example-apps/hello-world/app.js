import http from 'node:http';

const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end('Hello, World!');
});

server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1');
