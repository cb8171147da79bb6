import express from 'express';
import socketnaut from 'socketnaut/express';

const app = express();
app.use(socketnaut());
// The app speaks plain HTTP: the launcher has already decrypted the connection.
app.get('/', (req, res) => res.json({ encrypted: req.socket.encrypted === true, clientAddress: req.clientAddress }));
app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1');
