// inheritListen(): for code that calls listen() where you cannot pass it a
// socket (@grpc/grpc-js's bindAsync, a framework's own start-up): the next
// listen() of this process, whatever port it names, goes to the socket the
// supervisor handed down (SERVER_STARTER_PORT, else LISTEN_FDS; with none it
// binds as asked), the server is drained by graceful() on shutdown(), and
// READY=1 goes out once it listens. What `baton serve` does for a script
// that listens by itself, as a library call.
import type { Server } from 'node:net';
import { inheritedSockets, systemBacklog } from '../net/inherited.ts';
import { ListenCapture } from './capture.ts';
import { type DrainableServer, type Graceful, type GracefulOptions, graceful } from './graceful/index.ts';
import { ready } from './listen.ts';

export interface Inherited {
  /** The server that listened, once one has. */
  readonly server: DrainableServer | undefined;
  /** Resolves once it listens. */
  readonly listening: Promise<DrainableServer>;
  /** Drains it (graceful()); resolves to how that ended ('drained' when nothing listened). */
  shutdown(): Promise<'drained' | 'timeout'>;
}

export interface InheritOptions extends GracefulOptions {
  /** Of several listens, the one on this port is the one redirected (default: the first). */
  port?: number;
  /** Say READY=1 once it listens (default true). */
  notifyReady?: boolean;
}

export function inheritListen(options: InheritOptions = {}): Inherited {
  const [socket] = inheritedSockets();
  let drain: Graceful | undefined;
  let server: DrainableServer | undefined;
  let listened: (s: DrainableServer) => void = () => {};
  const listening = new Promise<DrainableServer>((resolve) => {
    listened = resolve;
  });
  const capture = new ListenCapture({
    fd: socket?.fd,
    backlog: systemBacklog(),
    appPort: options.port,
    onMain: ({ server: s }) => {
      server = s;
      drain = graceful(s, options);
      (s as Server).once('listening', () => {
        capture.release();
        if (options.notifyReady !== false) ready();
        listened(s);
      });
    },
    onRefused: (message) => process.emitWarning(`inheritListen: ${message}`),
  });
  return {
    get server() {
      return server;
    },
    listening,
    shutdown: () => drain?.shutdown() ?? Promise.resolve('drained'),
  };
}
