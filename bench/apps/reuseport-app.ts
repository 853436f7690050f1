// The seed's failing case: each generation binds its own SO_REUSEPORT socket
// (Node >= 22.12) and, on TERM, closes it and exits once idle.
import { createServer } from 'node:http';
import hello from './hello-listener.ts';

const server = createServer(hello);
server.listen({ host: '127.0.0.1', port: Number(process.env.PORT), reusePort: true });
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
