// `baton drill`: hot-deploy a server repeatedly under load and report every
// failed request. Exit status 0 only when nothing failed.
import { writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { commandLine, type OptionTable, optionHelp } from '../cli-kit/options.ts';
import { BatonError } from '../errors.ts';
import { writeErr, writeOut } from '../process/log.ts';
import { renderHtml } from './html.ts';
import { formatReport } from './report.ts';
import { runDrill } from './run.ts';

export const DRILL_OPTIONS = {
  deploys: { kind: 'integer', min: 0, default: 10, help: 'hot deploys to perform' },
  every: { kind: 'seconds', default: 1, help: 'seconds between deploys' },
  connections: { kind: 'integer', min: 1, default: 20, help: 'concurrent client connections' },
  threads: { kind: 'integer', min: 1, default: 1, aliases: ['workers'], help: 'load threads, to use more than one core' },
  'no-keepalive': { kind: 'flag', help: 'one request per connection (default: keep-alive)' },
  think: {
    kind: 'string',
    placeholder: 'MS[-MAX]',
    help: 'each connection pauses MS (or a random time up to MAX) between a\nresponse and its next request (many mostly idle keep-alive\nconnections, like browsers)',
  },
  rate: {
    kind: 'integer',
    min: 0,
    defaultText: 'closed loop over --connections',
    help: 'open loop: N requests per second fall due however slow the answers, and\ngo out on at most --connections connections (one due while all are busy\nwaits, its latency counted from when it was due)',
  },
  method: {
    kind: 'choice',
    choices: ['GET', 'POST'],
    default: 'GET',
    help: 'POST sends random bodies the server must echo as sha256\n(or answer as --expect-sha256 says)',
  },
  'body-bytes': { kind: 'integer', min: 0, default: 1024, help: 'POST body size' },
  'request-timeout': { kind: 'seconds', default: 5, aliases: ['timeout'], help: 'a request with no response by then is "timeout"' },
  'expect-status': { kind: 'integer', min: 100, max: 599, default: 200, help: 'the status every response must have' },
  'expect-sha256': {
    kind: 'string',
    placeholder: 'HEX',
    help: 'every response body must have this sha256 (a static file: sha256sum\nFILE), else it is a body-mismatch; with POST, instead of the sha256 of\nthe body sent (an app that answers every POST the same)',
  },
  'request-path': { kind: 'string', placeholder: '/p', default: '/', aliases: ['path'], help: 'the path requested, with a server command' },
  'check-path': {
    kind: 'string',
    placeholder: '/p',
    defaultText: "the drill's own request, its method and body, until it answers as expected",
    help: 'before the load, wait until a GET of this path answers',
  },
  url: { kind: 'string', placeholder: 'URL', help: 'drill a server that is already running (with --pid-file or --deploy)' },
  'pid-file': {
    kind: 'string',
    placeholder: 'FILE',
    help: 'with --url: the pid file of the supervisor running it: each deploy goes\nthrough its control socket and is followed to its verdict',
  },
  deploy: { kind: 'string', placeholder: "'CMD'", help: 'with --url: a shell command that hot-deploys it (not followed)' },
  ready: {
    kind: 'choice',
    choices: ['auto', 'notify', 'accept', 'interval'],
    default: 'auto',
    help: 'with a server command: how baton start tells a generation is ready\n(its --ready)',
  },
  duration: {
    kind: 'seconds',
    defaultText: 'until 2 s after the last deploy',
    help: 'keep the load on this long in all; INT or TERM ends the drill early,\nwith its report',
  },
  json: { kind: 'string', placeholder: 'FILE', help: 'also write the report as JSON' },
  html: { kind: 'string', placeholder: 'FILE', help: 'also write a self-contained HTML report with a timeline chart' },
  help: { kind: 'flag', help: 'this text' },
} as const satisfies OptionTable;

const USAGE = `Usage: baton drill [options] -- <server command>
       baton drill --url=URL --deploy='<shell command>' [options]

${optionHelp(DRILL_OPTIONS)}
Exit status: 0 when no request failed and every deploy took effect, 2
otherwise, 3 when the server never answered (with its last log lines), 1
for bad options; 130 or 143 when INT or TERM came before the server
answered.
`;

export async function drillMain(argv: string[]): Promise<number> {
  const line = commandLine('baton drill', DRILL_OPTIONS, argv, USAGE);
  if (!line) return 0;
  const { values: v, rest, usage } = line;
  const url = v.url;
  if (url && !v.deploy && !v['pid-file'] && v.deploys !== 0)
    throw usage('--url needs --pid-file (of its supervisor) or --deploy (a command that hot-deploys it), or --deploys=0 for load alone');
  if (!url && rest.length === 0) throw usage('give a server command after --, or --url with --deploy');
  if (url !== undefined && !/^http:$/.test(URL.parse(url)?.protocol ?? ''))
    throw usage(`--url must be an http:// URL, like http://127.0.0.1:8080/ (got ${JSON.stringify(url)})`);
  const path = v['request-path'];
  const checkPath = v['check-path'];
  for (const [name, p] of [
    ['--request-path', path],
    ['--check-path', checkPath],
  ] as const)
    if (p !== undefined && !/^\/[^\s#]*$/.test(p))
      throw usage(`${name} must start with / and hold no spaces or # (got ${JSON.stringify(p)})`);
  const sha = v['expect-sha256'];
  if (sha !== undefined && !/^[0-9a-f]{64}$/i.test(sha)) throw usage(`--expect-sha256 must be 64 hex digits (got ${JSON.stringify(sha)})`);
  const every = v.every;
  const timeout = v['request-timeout'];
  const method = v.method;
  if (!(every > 0)) throw usage(`--every must be a positive number of seconds (got ${every})`);
  const duration = v.duration;
  if (duration !== undefined && !(duration > 0)) throw usage(`--duration must be a positive number of seconds (got ${duration})`);
  if (!(timeout > 0)) throw usage(`--request-timeout must be a positive number of seconds (got ${timeout})`);
  const connections = v.connections;
  const threads = v.threads;
  const keepAlive = !v['no-keepalive'];
  const rate = v.rate ?? 0;
  const thinkSpec = /^(\d+)(?:-(\d+))?$/.exec(v.think ?? '0');
  if (!thinkSpec || Number(thinkSpec[2] ?? thinkSpec[1]) < Number(thinkSpec[1]))
    throw usage(`--think must be milliseconds, or MIN-MAX milliseconds (got ${v.think})`);
  const think = Number(thinkSpec[1]);
  const thinkMax = Number(thinkSpec[2] ?? think);
  // INT/TERM end the drill early, with its report (a long soak stopped by hand).
  // Stopped before the server answered, there is no report: the exit status
  // is the signal's (128 + its number), as for a shell command it ended.
  const early = new AbortController();
  const stop = (sig: NodeJS.Signals) =>
    early.abort(new BatonError('ERR_BATON_STOPPED', `stopped by ${sig} before the server answered`, 128 + constants.signals[sig]));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const { report } = await runDrill({
    label: `${keepAlive ? 'keep-alive' : 'no keep-alive'} ${method}, ${rate ? `${rate} req/s open loop` : `${connections} connections${think || thinkMax ? `, ${thinkMax > think ? `${think}-${thinkMax}` : think} ms think time` : ''}`}`,
    command: url ? undefined : rest,
    url,
    deployCommand: v.deploy,
    pidFile: v['pid-file'],
    readiness: v.ready,
    path,
    checkPath,
    deploys: v.deploys,
    everyMs: every * 1000,
    warmupMs: 1000,
    cooldownMs: 2000,
    durationMs: duration === undefined ? undefined : duration * 1000,
    threads,
    signal: early.signal,
    load: {
      connections,
      keepAlive,
      method,
      bodyBytes: v['body-bytes'],
      timeoutMs: timeout * 1000,
      expectStatus: v['expect-status'],
      ...(sha === undefined ? {} : { expectSha256: sha.toLowerCase() }),
      rate,
      thinkMs: think,
      thinkMaxMs: thinkMax,
    },
    // One self-updating line on a terminal, one line per second otherwise.
    progress: (line) => writeErr(process.stderr.isTTY ? `\r${line}\x1b[K` : `${line}\n`),
  });
  if (process.stderr.isTTY) writeErr('\n');
  writeOut(formatReport(report));
  if (v.json) writeFileSync(v.json, `${JSON.stringify(report, null, 2)}\n`);
  if (v.html) writeFileSync(v.html, renderHtml([report]));
  return report.failed === 0 && report.failedDeploys === 0 ? 0 : 2;
}
