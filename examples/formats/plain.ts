// A plain Node request listener: `baton serve examples/formats/plain.ts`
import type { IncomingMessage, ServerResponse } from 'node:http';

export default function app(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('Content-Type', 'text/plain');
  res.end(`plain ${req.url}\n`);
}
