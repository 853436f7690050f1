// Express: the app is a request listener already.
import express from 'express';

const app = express();
app.get('/', (_req, res) => {
  res.type('text/plain').send('express /\n');
});
export default app;
