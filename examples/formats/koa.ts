// Koa: export the app (baton calls app.callback()), or app.callback() itself.
import Koa from 'koa';

const app = new Koa();
app.use((ctx) => {
  ctx.type = 'text/plain';
  ctx.body = `koa ${ctx.path}\n`;
});
export default app;
