// Hono (and any fetch-style framework): an object with fetch(request).
import { Hono } from 'hono';

const app = new Hono();
app.get('/', (c) => c.text('hono /\n'));
app.post('/echo', async (c) => c.text(await c.req.text()));
export default app;
