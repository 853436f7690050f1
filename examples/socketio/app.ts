// socket.io under `baton serve`, through hot deploys: every client is moved
// to the new generation with a clean close of its transport, and reconnects
// on its own.
//
//   baton start --port=8080 --pid-file=/run/chat.pid -- baton serve examples/socketio/app.ts
//   baton deploy --pid-file=/run/chat.pid
//
// - `attach(server)`: baton serve hands the app each worker's http.Server
//   before it listens, which is where socket.io attaches itself.
// - WebSocket transport only: HTTP long-polling needs every request of a
//   session to reach the same process (sticky sessions), and baton's workers
//   share one listening socket. Clients: io(url, { transports: ['websocket'] }).
// - On baton's `draining` signal the app closes the transports
//   (io.engine.close()): the clients see "transport close" and reconnect, to
//   the new generation. (io.disconnectSockets() would not do: a client told
//   "io server disconnect" does not reconnect by itself.) socket.io's
//   clients wait 0.5-1.5 s before reconnecting by default; reconnectionDelay
//   lowers it.
import type { Server as HttpServer } from 'node:http';
import { draining } from 'baton-deploy';
import { Server } from 'socket.io';

const generation = process.env.SERVER_STARTER_GENERATION ?? '0';
const servers: Server[] = [];

export function attach(http: HttpServer): void {
  const io = new Server(http, { transports: ['websocket'] });
  io.on('connection', (socket) => {
    socket.emit('hello', generation);
    socket.on('message', (id: number, ack: (reply: { id: number; generation: string }) => void) => ack({ id, generation }));
  });
  servers.push(io);
}

draining.addEventListener('abort', () => {
  for (const io of servers) io.engine.close();
});

// everything that is not socket.io's
export default (_req: unknown, res: { end(body: string): void }) => res.end(`generation ${generation}\n`);
