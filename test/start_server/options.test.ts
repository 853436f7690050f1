import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type OptionTable, optionHelp, parseOptions } from '../../src/cli-kit/options.ts';
import { normalizeSignal } from '../../src/process/signals.ts';
import { parseArgs, type StartServerOptions } from '../../src/start_server/options.ts';

function startOptions(argv: string[]): StartServerOptions {
  const a = parseArgs(argv);
  assert.equal(a.kind, 'start');
  return (a as { options: StartServerOptions }).options;
}

test('Getopt::Long forms: =value, separate value, single dash, prefixes, any case', () => {
  const o = startOptions([
    '--port=80',
    '--port',
    '81',
    '-interval',
    '3',
    '--PID=/p',
    '--status',
    '/s',
    '--Signal-on-h=usr1',
    '--',
    'cmd',
    '-x',
  ]);
  assert.deepEqual(o.ports, ['80', '81']);
  assert.equal(o.interval, 3);
  assert.equal(o.pidFile, '/p');
  assert.equal(o.statusFile, '/s');
  assert.equal(o.signalOnHup, 'USR1');
  assert.deepEqual(o.command, ['cmd', '-x']);
});

test('options may follow the command words (permute); -- ends them', () => {
  const o = startOptions(['cmd', '--port=80', 'arg']);
  assert.deepEqual(o.command, ['cmd', 'arg']);
  assert.deepEqual(o.ports, ['80']);
});

test('abbreviations prefer upstream options over baton extensions', () => {
  assert.equal(startOptions(['--kill=3', 'x']).killOldDelay, 3);
  assert.equal(startOptions(['--kill-t=3', 'x']).killTimeout, 3);
  assert.equal(startOptions(['--ready-n', 'x']).ready, 'notify');
});

test('a mandatory value is taken even when it starts with a dash', () => {
  assert.deepEqual(parseOptions({ dir: { kind: 'string', help: '' } }, ['--dir', '-weird', 'x']).values, { dir: '-weird' });
});

test('Getopt::Long error messages', () => {
  const table = {
    path: { kind: 'list', help: '' },
    'pid-file': { kind: 'string', help: '' },
    port: { kind: 'list', help: '' },
    interval: { kind: 'integer', help: '' },
    daemonize: { kind: 'flag', help: '' },
  } as const satisfies OptionTable;
  const errs = (argv: string[]) => parseOptions(table, argv).errors;
  assert.deepEqual(errs(['--p=1']), ['Option p is ambiguous (path, pid-file, port)']);
  assert.deepEqual(errs(['--bogus']), ['Unknown option: bogus']);
  assert.deepEqual(errs(['--interval=abc']), ['Value "abc" invalid for option interval (number expected)']);
  assert.deepEqual(errs(['--interval']), ['Option interval requires an argument']);
  assert.deepEqual(errs(['--daemonize=1']), ['Option daemonize does not take an argument']);
});

test('evaluation order and exit codes follow upstream', () => {
  assert.equal(parseArgs(['--help', '--version']).kind, 'help');
  assert.deepEqual(parseArgs(['--version', '--stop']), { kind: 'version' });
  assert.equal(parseArgs(['--restart', '--stop']).kind, 'restart');
  const code = (argv: string[]) => {
    try {
      parseArgs(argv);
    } catch (e) {
      return [(e as { exitCode: number }).exitCode, (e as Error).message];
    }
    return undefined;
  };
  assert.deepEqual(code(['--bogus', 'x']), [1, 'Unknown option: bogus']);
  assert.match(
    String(code(['cmd', '-s', 'X'])?.[1]),
    /Option s is ambiguous \(signal-on-hup, signal-on-term, status-file, stop\)\n.*put -- before the server command/,
  );
  assert.deepEqual(code(['--daemonize', 'x'])?.[0], 255);
  assert.match(String(code(['--daemonize', 'x'])?.[1]), /--log-file option must be specified together with --daemonize/);
  assert.deepEqual(code(['--port=80'])?.[0], 255);
  assert.match(String(code(['--port=80'])?.[1]), /^server program not specified/);
  assert.deepEqual(code(['--signal-on-hup=FOO', 'x']), [
    1,
    '--signal-on-hup: unknown signal name "FOO" (use a name such as TERM, QUIT, USR1)',
  ]);
  assert.deepEqual(code(['--interval=-1', 'x']), [1, '--interval must be 0 or more (got -1)']);
});

test('defaults', () => {
  const o = startOptions(['x']);
  assert.equal(o.interval, 1);
  assert.equal(o.signalOnHup, 'TERM');
  assert.equal(o.signalOnTerm, 'TERM');
  assert.equal(o.backlog, 0);
  assert.equal(o.killTimeout, 0);
  assert.equal(o.ready, 'interval');
  assert.equal(o.enableAutoRestart, undefined);
  const modern = parseArgs(['x'], true);
  assert.equal(modern.kind, 'start');
  const m = (modern as { options: StartServerOptions }).options;
  assert.deepEqual([m.ready, m.maxStartAttempts, m.maxDraining, m.coalesceHup, m.stderrTail], ['auto', 3, 4, true, 20]);
  const off = (parseArgs(['--no-coalesce-hup', '--no-ready-notify', 'x'], true) as { options: StartServerOptions }).options;
  assert.deepEqual([off.coalesceHup, off.ready], [false, 'interval']);
});

test('each option states its default once: the help shows what the parse fills in', () => {
  const h = (modern: boolean) => (parseArgs(['--help'], modern) as { text: string }).text;
  assert.match(h(false), /--max-start-attempts=n\s+failed starts of one deploy[\s\S]*?\(0: never\) \(default: 0\)/);
  assert.match(h(true), /--max-start-attempts=n\s+failed starts of one deploy[\s\S]*?\(default: 3\)/);
  assert.match(h(true), /--\[no-\]coalesce-hup\s+HUPs received during a deploy make one follow-up deploy \(default: on\)/);
  assert.doesNotMatch(h(false), /--ready-notify/);
});

test('signal names: any case, optional SIG, numbers', () => {
  assert.equal(normalizeSignal('sigusr1', 'x'), 'USR1');
  assert.equal(normalizeSignal('Hup', 'x'), 'HUP');
  assert.equal(normalizeSignal('SIGTERM', 'x'), 'TERM');
  assert.equal(normalizeSignal('15', 'x'), 'TERM');
  assert.throws(() => normalizeSignal('99', 'x'));
});

test('option tables: typed values, seconds and choices checked, aliases, generated help', () => {
  const table = {
    timeout: { kind: 'seconds', help: 'whole-request timeout' },
    mode: { kind: 'choice', choices: ['a', 'b'], help: 'how' },
    'socket-handoff': { kind: 'string', placeholder: 'PATH', aliases: ['handoff'], help: 'take sockets\nfrom PATH' },
    old: { kind: 'flag', hidden: true, help: 'gone' },
  } as const satisfies OptionTable;
  const ok = parseOptions(table, ['--timeout=1.5', '--mode', 'b', '--handoff=/x']);
  assert.deepEqual(ok.errors, []);
  assert.deepEqual(ok.values, { timeout: 1.5, mode: 'b', 'socket-handoff': '/x', old: false });
  assert.deepEqual(parseOptions(table, ['--timeout=-1', '--mode=c']).errors, [
    '--timeout must be a number of seconds, 0 or more (got "-1")',
    '--mode must be one of a, b (got "c")',
  ]);
  const help = optionHelp(table);
  assert.match(help, /^ {2}--timeout=SECS +whole-request timeout$/m);
  assert.match(help, /^ {2}--mode=a\|b +how$/m);
  assert.match(help, /^ {2}--socket-handoff=PATH +take sockets\n +from PATH$/m);
  assert.doesNotMatch(help, /--old/);
});
