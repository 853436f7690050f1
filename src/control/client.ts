// The client side of a supervisor's control socket: one request, then each
// reply as it arrives.
import { connect } from 'node:net';
import { BatonError } from '../errors.ts';
import type { Reply, Request } from './protocol.ts';

/** Exit status of a command that found no supervisor to talk to. */
export const NO_SUPERVISOR = 3;

/** Sends `request` to the supervisor at `path`; `done` resolves once it has said all it will, close() hangs up first. */
export function controlRequest(path: string, request: Request, onReply: (r: Reply) => void): { done: Promise<void>; close(): void } {
  const socket = connect(path);
  const done = new Promise<void>((resolve, reject) => {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          onReply(JSON.parse(line) as Reply);
        } catch (e) {
          socket.destroy();
          reject(e);
          return;
        }
      }
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
        reject(
          new BatonError(
            `no supervisor is listening at ${path} (is start_server running, with this --pid-file?)`,
            'ERR_BATON_NO_SUPERVISOR',
            NO_SUPERVISOR,
          ),
        );
      } else if (e.code === 'EACCES') {
        reject(new BatonError(`${path} belongs to another user: run as the supervisor's user`, 'EACCES', NO_SUPERVISOR));
      } else reject(new BatonError(`the supervisor at ${path}: ${e.message}`, e.code ?? 'EIO', NO_SUPERVISOR));
    });
    socket.on('close', () => resolve());
  });
  return { done, close: () => socket.destroy() };
}
