import express from 'express';
import socketnaut from 'socketnaut/express';

const app = express();
app.use(socketnaut());
app.get('/', (req, res) => res.json({ hello: req.clientAddress }));
app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1');
