// The client side of a supervisor's control socket: one request, then each
// reply as it arrives.
import { connect } from 'node:net';
import { BatonError } from '../errors.ts';
import type { Reply, Request } from './protocol.ts';

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
            'ERR_BATON_NO_SUPERVISOR',
            `no supervisor is listening at ${path} (is start_server running, with this --pid-file?)`,
          ),
        );
      } else if (e.code === 'EACCES') {
        reject(new BatonError('ERR_BATON_NO_SUPERVISOR', `${path} belongs to another user: run as the supervisor's user`));
      } else reject(new BatonError('ERR_BATON_NO_SUPERVISOR', `the supervisor at ${path}: ${e.message}`));
    });
    socket.on('close', () => resolve());
  });
  return { done, close: () => socket.destroy() };
}
