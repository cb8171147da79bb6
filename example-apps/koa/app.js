import Koa from 'koa';
import socketnaut from 'socketnaut/koa';

const app = new Koa();
app.use(socketnaut());
app.use((ctx) => {
  ctx.body = { hello: ctx.clientAddress };
});
app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1');
