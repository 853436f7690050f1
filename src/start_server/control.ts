// The supervisor's control socket (protocol in control/protocol.ts): a UNIX
// stream socket of mode 0600, and each peer checked with SO_PEERCRED (our
// uid, or root). A deploy request gets the events of the deploy that covers
// it as they happen, then its verdict; a status request gets the
// generations and the deploy history.
import { chmodSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Reply, Request, StatusReport } from '../control/protocol.ts';
import { native } from '../net/native.ts';
import { claimSocketPath } from '../net/socket-path.ts';
import type { DeploySink } from './deploys.ts';

export interface ControlHandlers {
  deploy(sink: DeploySink): void;
  status(): StatusReport;
  /** An upgrade of baton itself: `reply` gets its progress, or the reason it was refused. */
  upgrade(reply: (r: Reply) => void): void;
}

/** The longest a deploy request may ask to wait. */
const MAX_TIMEOUT_MS = 24 * 3600_000;

function send(socket: Socket, reply: Reply): void {
  if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
}

function peerAllowed(socket: Socket): boolean {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) return false;
  try {
    const { uid } = native.peerCred(fd);
    return uid === process.getuid?.() || uid === 0;
  } catch {
    return false;
  }
}

function serve(socket: Socket, handlers: ControlHandlers, log: (line: string) => void): void {
  if (!peerAllowed(socket)) {
    log('control: refused a client running as another user');
    socket.destroy();
    return;
  }
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  const onData = (chunk: string) => {
    buffer += chunk;
    const nl = buffer.indexOf('\n');
    if (nl < 0) {
      if (buffer.length > 64 * 1024) socket.destroy();
      return;
    }
    socket.off('data', onData);
    let req: Request;
    try {
      req = JSON.parse(buffer.slice(0, nl)) as Request;
    } catch {
      send(socket, { error: 'a request is one JSON object on one line' });
      socket.end();
      return;
    }
    if ('status' in req) {
      send(socket, { report: handlers.status() });
      socket.end();
    } else if ('upgrade' in req) {
      handlers.upgrade((r) => {
        send(socket, r);
        if ('error' in r) socket.end();
      });
    } else if ('deploy' in req && Number.isFinite(req.deploy?.timeoutMs)) {
      handlers.deploy({
        deadline: Date.now() + Math.min(Math.max(0, req.deploy.timeoutMs), MAX_TIMEOUT_MS),
        event: (e) => send(socket, e),
        verdict: (v) => {
          send(socket, { verdict: v });
          socket.end();
        },
      });
    } else {
      send(socket, { error: 'unknown request (deploy, status or upgrade)' });
      socket.end();
    }
  };
  socket.on('data', onData);
}

export class ControlServer {
  private readonly server: Server;
  private readonly path: string;

  private constructor(server: Server, path: string) {
    this.server = server;
    this.path = path;
  }

  /** Listens at `path` (a stale socket there is replaced; anything else is refused). */
  static async open(path: string, handlers: ControlHandlers, log: (line: string) => void): Promise<ControlServer> {
    claimSocketPath(path);
    const server = createServer((socket) => serve(socket, handlers, log));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Only our uid may connect; the peer check is the second lock.
    chmodSync(path, 0o600);
    server.unref();
    return new ControlServer(server, path);
  }

  close(): void {
    this.server.close();
    try {
      claimSocketPath(this.path);
    } catch {
      // replaced by something else meanwhile: not ours to remove
    }
  }
}
