// What this machine serves, measured rather than assumed: a load test first
// measures the server it is about to load, with the same client and on the
// same cores, then offers a share of it. A fixed absolute load is an
// overload test on a machine three times slower.
import { LoadClient, type LoadOptions } from '../src/drill/load-client.ts';

export interface Capacity {
  /** Requests per second over 20 keep-alive connections, closed loop. */
  keepAlive: number;
  /** Requests per second with a new connection each, 20 at a time, closed loop. */
  newConnections: number;
}

async function rate(url: string, keepAlive: boolean, seconds: number): Promise<number> {
  const opts: LoadOptions = { url, connections: 20, keepAlive, method: 'GET', bodyBytes: 0, timeoutMs: 10_000, expectStatus: 200 };
  const client = new LoadClient(opts);
  const t0 = await client.start();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const { recording } = await client.stop();
  if (recording.failed > 0)
    throw new Error(`measuring capacity: ${recording.failed} requests failed (${JSON.stringify(recording.failures[0])})`);
  return recording.requests / ((performance.now() - t0) / 1000);
}

/** Closed-loop throughput of the server at `url`, with and without keep-alive. */
export async function measureCapacity(url: string, seconds = 2): Promise<Capacity> {
  return { keepAlive: await rate(url, true, seconds), newConnections: await rate(url, false, seconds) };
}
