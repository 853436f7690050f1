// Fastify owns its http.Server, so adapt it: a factory that readies the app
// and hands each request to Fastify's routing. Fastify's own listen() is not
// called; baton's workers do the listening.
import Fastify from 'fastify';

export default async function createApp() {
  const app = Fastify();
  app.get('/', async () => 'fastify /\n');
  await app.ready();
  return app.routing;
}
