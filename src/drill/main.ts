// `baton drill`: hot-deploy a server repeatedly under load and report every
// failed request. Exit status 0 only when nothing failed.
import { writeFileSync } from 'node:fs';
import { writeErr, writeOut } from '../process/log.ts';
import { getopt } from '../start_server/getopt.ts';
import { renderHtml } from './html.ts';
import { formatReport } from './report.ts';
import { runDrill } from './run.ts';

const USAGE = `Usage: baton drill [options] -- <server command>
       baton drill --url=URL --deploy='<shell command>' [options]

  --deploys=N          hot deploys to perform (default 10)
  --every=SECS         seconds between deploys (default 1)
  --connections=N      concurrent client connections (default 20)
  --workers=N          load threads, to use more than one core (default 1)
  --no-keepalive       one request per connection (default: keep-alive)
  --think=MS[-MAX]     each connection pauses MS (or a random time up to MAX)
                       between a response and its next request (many mostly
                       idle keep-alive connections, like browsers)
  --rate=N             open loop: start N requests per second however slow the
                       answers (default: closed loop over --connections)
  --method=GET|POST    POST sends random bodies the server must echo as sha256
  --body-bytes=N       POST body size (default 1024)
  --timeout=SECS       a request with no response by then is "timeout" (default 5)
  --expect-status=N    (default 200)
  --path=/p            request path with a server command (default /)
  --duration=SECS      keep the load on this long in all (default: until 2 s after the last deploy)
                       INT or TERM ends the drill early, with its report
  --json=FILE          also write the report as JSON
  --html=FILE          also write a self-contained HTML report with a timeline chart
`;

export async function drillMain(argv: string[]): Promise<number> {
  const {
    values: v,
    rest,
    errors,
  } = getopt(argv, [
    { name: 'deploys', kind: 'integer' },
    { name: 'every', kind: 'string' },
    { name: 'connections', kind: 'integer' },
    { name: 'workers', kind: 'integer' },
    { name: 'no-keepalive', kind: 'flag' },
    { name: 'rate', kind: 'integer' },
    { name: 'think', kind: 'string' },
    { name: 'method', kind: 'string' },
    { name: 'body-bytes', kind: 'integer' },
    { name: 'timeout', kind: 'string' },
    { name: 'expect-status', kind: 'integer' },
    { name: 'path', kind: 'string' },
    { name: 'url', kind: 'string' },
    { name: 'deploy', kind: 'string' },
    { name: 'json', kind: 'string' },
    { name: 'html', kind: 'string' },
    { name: 'duration', kind: 'string' },
    { name: 'help', kind: 'flag' },
  ]);
  const usage = (msg: string) => {
    writeErr(`baton drill: ${msg}\n${USAGE}`);
    return 1;
  };
  if (v.help) {
    writeOut(USAGE);
    return 0;
  }
  if (errors.length) return usage(errors[0] as string);
  const url = v.url as string | undefined;
  if (url && !v.deploy && v.deploys !== 0)
    return usage('--url needs --deploy (the command that hot-deploys that server), or --deploys=0 for load alone');
  if (!url && rest.length === 0) return usage('give a server command after --, or --url with --deploy');
  const every = Number(v.every ?? 1);
  const timeout = Number(v.timeout ?? 5);
  const method = String(v.method ?? 'GET').toUpperCase();
  if (!(every > 0)) return usage(`--every must be a positive number of seconds (got ${v.every})`);
  const duration = v.duration === undefined ? undefined : Number(v.duration);
  if (duration !== undefined && !(duration > 0)) return usage(`--duration must be a positive number of seconds (got ${v.duration})`);
  if (!(timeout > 0)) return usage(`--timeout must be a positive number of seconds (got ${v.timeout})`);
  if (method !== 'GET' && method !== 'POST') return usage(`--method must be GET or POST (got ${v.method})`);
  const connections = (v.connections as number | undefined) ?? 20;
  if (connections < 1) return usage('--connections must be at least 1');
  const workers = (v.workers as number | undefined) ?? 1;
  if (workers < 1) return usage('--workers must be at least 1');
  const keepAlive = !v['no-keepalive'];
  const rate = (v.rate as number | undefined) ?? 0;
  if (rate < 0) return usage('--rate must be 0 or more requests per second');
  const thinkSpec = /^(\d+)(?:-(\d+))?$/.exec((v.think as string | undefined) ?? '0');
  if (!thinkSpec || Number(thinkSpec[2] ?? thinkSpec[1]) < Number(thinkSpec[1]))
    return usage(`--think must be milliseconds, or MIN-MAX milliseconds (got ${v.think})`);
  const think = Number(thinkSpec[1]);
  const thinkMax = Number(thinkSpec[2] ?? think);
  // INT/TERM end the drill early, with its report (a long soak stopped by hand).
  const early = new AbortController();
  const stop = () => early.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const { report } = await runDrill({
    label: `${keepAlive ? 'keep-alive' : 'no keep-alive'} ${method}, ${rate ? `${rate} req/s open loop` : `${connections} connections${think || thinkMax ? `, ${thinkMax > think ? `${think}-${thinkMax}` : think} ms think time` : ''}`}`,
    command: url ? undefined : rest,
    url,
    deployCommand: v.deploy as string | undefined,
    path: (v.path as string | undefined) ?? '/',
    deploys: (v.deploys as number | undefined) ?? 10,
    everyMs: every * 1000,
    warmupMs: 1000,
    cooldownMs: 2000,
    durationMs: duration === undefined ? undefined : duration * 1000,
    workers,
    signal: early.signal,
    load: {
      connections,
      keepAlive,
      method,
      bodyBytes: (v['body-bytes'] as number | undefined) ?? 1024,
      timeoutMs: timeout * 1000,
      expectStatus: (v['expect-status'] as number | undefined) ?? 200,
      rate,
      thinkMs: think,
      thinkMaxMs: thinkMax,
    },
    // One self-updating line on a terminal, one line per second otherwise.
    progress: (line) => writeErr(process.stderr.isTTY ? `\r${line}\x1b[K` : `${line}\n`),
  });
  if (process.stderr.isTTY) writeErr('\n');
  writeOut(formatReport(report));
  if (v.json) writeFileSync(v.json as string, `${JSON.stringify(report, null, 2)}\n`);
  if (v.html) writeFileSync(v.html as string, renderHtml([report]));
  return report.failed === 0 ? 0 : 2;
}
