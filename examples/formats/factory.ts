// A factory: called once in each worker, may be async (open pools here).
import type { IncomingMessage, ServerResponse } from 'node:http';

export default async function createApp() {
  const startedAt = Date.now();
  return (_req: IncomingMessage, res: ServerResponse) => res.end(`factory ${process.pid} up since ${startedAt}\n`);
}
