// WebSockets (with `ws`) and server-sent events under `baton serve`, through
// hot deploys: every client sees a clean close and is back, on the new
// generation, within a second.
//
//   baton start --port=8080 --pid-file=/run/live.pid -- baton serve examples/live/app.ts
//   baton deploy --pid-file=/run/live.pid
//
// The two things that make it work: the `upgrade` export (baton serve hands
// it the server's upgrade requests), and baton's `draining` signal, on which
// the app says goodbye properly (close code 1001, Going Away; the end of
// the event stream). Clients reconnect at once, and the new generation takes
// them. An app that ignores the signal still gets the same clean close from
// baton at --drain-timeout (default 10 s), only later.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { draining } from 'baton-deploy';
import { WebSocketServer } from 'ws';

const generation = process.env.SERVER_STARTER_GENERATION ?? '0';
const wss = new WebSocketServer({ noServer: true });
const streams = new Set<ServerResponse>();

wss.on('connection', (ws) => {
  ws.send(`hello from generation ${generation}`);
  ws.on('message', (data) => ws.send(`echo: ${data}`));
});

draining.addEventListener('abort', () => {
  for (const ws of wss.clients) ws.close(1001, 'deploy');
  for (const res of streams) res.end();
});

export function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
}

export default function app(req: IncomingMessage, res: ServerResponse): void {
  if (req.url !== '/events') {
    res.setHeader('content-type', 'text/plain');
    res.end(`generation ${generation}: WebSocket on /, event stream on /events\n`);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  // EventSource waits 3 s before reconnecting unless told otherwise
  res.write('retry: 100\n\n');
  streams.add(res);
  const tick = setInterval(() => res.write(`data: ${new Date().toISOString()} from generation ${generation}\n\n`), 1000);
  res.on('close', () => {
    clearInterval(tick);
    streams.delete(res);
  });
}
