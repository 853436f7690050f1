// POST bodies come back as their sha256, so a load client can check each one
// arrived whole.
import { createHash } from 'node:crypto';

export async function POST(request) {
  const body = Buffer.from(await request.arrayBuffer());
  return new Response(`${createHash('sha256').update(body).digest('hex')}\n`, { headers: { 'content-type': 'text/plain' } });
}
