// Next.js under `baton serve`: a factory, called once per worker, that
// prepares the production build and returns Next's request handler.
//   npm run build:nextjs
//   start_server --port=8080 --ready-notify -- baton serve examples/nextjs/serve.mjs
import next from 'next';

export default async function createHandler() {
  const app = next({ dev: false, dir: import.meta.dirname });
  await app.prepare();
  return app.getRequestHandler();
}
