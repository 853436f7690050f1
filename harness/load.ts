// wrk and ab, run as real clients, with their failure counters parsed the way
// they report them: wrk socket errors (connect, read, write, timeout) plus
// non-2xx/3xx responses; ab's failed requests plus non-2xx responses.
import { spawn } from 'node:child_process';
import { LoadClient, type LoadOptions } from '../src/drill/load-client.ts';
import { OUTCOMES } from '../src/drill/recording.ts';

export interface LoadResult {
  tool: string;
  requests: number;
  failures: number;
  detail: string;
  output: string;
}

/** Where a load runs: here, or behind a prefix such as `nsenter --net=/var/run/netns/NS` (another network namespace). */
export type Where = readonly string[];

function runTool(cmd: string, args: string[], where: Where = []): { done: Promise<string>; stop: () => void } {
  const [file, ...rest] = [...where, cmd, ...args] as [string, ...string[]];
  const child = spawn(file, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    out += d;
  });
  const done = new Promise<string>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', () => resolve(out));
  });
  return { done, stop: () => child.kill('SIGINT') };
}

const num = (re: RegExp, text: string) => Number(re.exec(text)?.[1] ?? 0);

export function parseWrk(out: string): LoadResult {
  const requests = num(/(\d+) requests in/, out);
  const m = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socket = m ? m.slice(1).map(Number) : [0, 0, 0, 0];
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/, out);
  const failures = socket.reduce((a, b) => a + b, 0) + non2xx;
  if (!/requests in/.test(out)) throw new Error(`wrk produced no summary:\n${out}`);
  return {
    tool: 'wrk',
    requests,
    failures,
    detail: `connect ${socket[0]}, read ${socket[1]}, write ${socket[2]}, timeout ${socket[3]}, non-2xx ${non2xx}`,
    output: out,
  };
}

export function parseAb(out: string): LoadResult {
  // ab -r survives failed reads, but gives up after 10 failed connects in a row
  const aborted = /Test aborted after (\d+) failures/.exec(out);
  if (aborted) {
    const failures = Number(aborted[1]);
    const requests = num(/Total of (\d+) requests completed/, out) + failures;
    return { tool: 'ab', requests, failures, detail: `aborted after ${failures} failed connects`, output: out };
  }
  if (!/Complete requests:/.test(out)) throw new Error(`ab produced no summary:\n${out}`);
  const requests = num(/Complete requests:\s+(\d+)/, out);
  const failed = num(/Failed requests:\s+(\d+)/, out);
  const non2xx = num(/Non-2xx responses:\s+(\d+)/, out);
  return { tool: 'ab', requests, failures: failed + non2xx, detail: `failed ${failed}, non-2xx ${non2xx}`, output: out };
}

/** A load running until stopped; stop() resolves to what it counted. */
export interface Load {
  stop(): Promise<LoadResult>;
}

/** Longest a load may run unstopped: a test that forgets to stop one still ends. */
const MAX_SECONDS = 600;

/** wrk with `connections` keep-alive connections (each request closing its own with `close`). */
export function wrk(url: string, connections: number, close = false, where: Where = []): Load {
  const args = ['-t2', `-c${connections}`, `-d${MAX_SECONDS}s`, '--timeout', '5s', ...(close ? ['-H', 'Connection: close'] : []), url];
  const run = runTool('wrk', args, where);
  return {
    stop: () => {
      run.stop();
      return run.done.then(parseWrk);
    },
  };
}

/** ab -r (no keep-alive) with `connections` at a time, at most `limit` requests. */
export function ab(url: string, connections: number, limit = 5_000_000, where: Where = []): Load {
  const run = runTool('ab', ['-r', '-q', '-s', '5', `-c${connections}`, `-t${MAX_SECONDS}`, `-n${limit}`, url], where);
  return {
    stop: () => {
      run.stop();
      return run.done.then(parseAb);
    },
  };
}

/**
 * The drill's own client as a load: counts hung requests too, and checks POST
 * bodies. Resolves once the load runs; stop() waits for the requests in flight.
 */
export async function drillLoad(options: LoadOptions): Promise<Load> {
  const client = new LoadClient(options);
  await client.start();
  return {
    stop: async () => {
      const { recording: r } = await client.stop();
      const byKind = Object.fromEntries(OUTCOMES.map((o, i) => [o, r.outcomes[i]]).filter(([o, n]) => o !== 'ok' && n));
      return {
        tool: 'drill',
        requests: r.requests,
        failures: r.failed,
        detail: JSON.stringify(byKind),
        output: r.failures
          .slice(0, 10)
          .map((f) => `${f.outcome} ${f.detail}`)
          .join('\n'),
      };
    },
  };
}
