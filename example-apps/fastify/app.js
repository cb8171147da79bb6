import Fastify from 'fastify';
import socketnaut from 'socketnaut/fastify';

const app = Fastify();
await app.register(socketnaut);
app.get('/', (req) => ({ hello: req.clientAddress }));
await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' });
