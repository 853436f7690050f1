// Every command line in README.md and docs/ works as written. Each ```sh
// block's baton and start_server command lines (also those nested after a
// `--`, as in `baton start -- baton serve app.js`) are parsed with the
// command's own option table, the one its --help prints: an option that does
// not exist, or a value it refuses, fails here. The blocks marked
// `<!-- runnable -->` are run for real with bash in a private network
// namespace (so port 8080 is free), in an empty directory, with `baton` and
// `start_server` on PATH, and must exit 0. Each docs page's option tables
// list exactly what the command's --help lists.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { COMMAND_OPTIONS, docFiles } from '../scripts/docs.ts';
import { parseOptions } from '../src/cli-kit/options.ts';
import { BATON, ROOT, START_SERVER, tempDir } from './helpers.ts';

interface Block {
  file: string;
  line: number;
  runnable: boolean;
  text: string;
}

function shellBlocks(file: string): Block[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```sh') continue;
    const end = lines.indexOf('```', i + 1);
    blocks.push({
      file: basename(file),
      line: i + 1,
      runnable: lines[i - 1] === '<!-- runnable -->',
      text: lines.slice(i + 1, end).join('\n'),
    });
    i = end;
  }
  return blocks;
}

/** Shell words of one command line, quotes removed; operators (`&&`, `|`, `;`, `&`, redirections) as words of their own. */
function words(line: string): string[] {
  const out: string[] = [];
  let cur: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      if (end < 0) throw new Error(`an unclosed quote in: ${line}`);
      cur = (cur ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === ' ' || c === '\t') {
      if (cur !== undefined) out.push(cur);
      cur = undefined;
    } else if (c === '#' && cur === undefined) {
      break;
    } else if ('&|;<>'.includes(c) && cur === undefined) {
      const op = /^(&&|\|\||[&|;]|\d?>>?|<)/.exec(line.slice(i))?.[0] ?? c;
      out.push(op);
      i += op.length - 1;
    } else cur = (cur ?? '') + c;
  }
  if (cur !== undefined) out.push(cur);
  return out;
}

const OPERATORS = new Set(['&&', '||', '&', '|', ';']);

/** The command lines of a block: here-documents left out, continuations joined, `$ ` prompts dropped, split at operators. */
function commandLines(text: string): string[][] {
  const joined = text
    .replace(/<<'?(\w+)'?\n[\s\S]*?\n\1(\n|$)/g, '\n')
    .replace(/\\\n\s*/g, ' ')
    .split('\n');
  const out: string[][] = [];
  for (const line of joined) {
    let cmd: string[] = [];
    for (const w of words(line.replace(/^\$ /, ''))) {
      if (OPERATORS.has(w)) {
        out.push(cmd);
        cmd = [];
      } else cmd.push(w);
    }
    out.push(cmd);
  }
  return out.filter((c) => c.length > 0);
}

/** Checks a baton/start_server invocation starting at argv[0]; returns what it found wrong. */
function check(argv: string[]): string[] {
  const [bin, sub] = argv;
  const command = bin === 'start_server' ? 'start_server' : `baton ${sub}`;
  if (bin === 'baton' && (sub === undefined || ['--version', 'help', '--help', 'doctor'].includes(sub))) return [];
  const options = COMMAND_OPTIONS[command];
  if (!options) return [`no such command: ${command}`];
  const args = argv.slice(bin === 'start_server' ? 1 : 2);
  const cut = args.indexOf('--');
  const own = cut < 0 ? args : args.slice(0, cut);
  const problems = parseOptions(options, own).errors.map((e) => `${command}: ${e}`);
  if (cut < 0) return problems;
  let rest = args.slice(cut + 1);
  if (command === 'baton systemd') rest = ['baton', 'start', ...rest];
  const nested = rest.findIndex((w) => w === 'baton' || w === 'start_server');
  return nested < 0 ? problems : [...problems, ...check(rest.slice(nested))];
}

const blocks = docFiles().flatMap(shellBlocks);

test('README.md and docs/ have shell examples, some of them runnable', () => {
  assert.ok(blocks.length >= 20, `${blocks.length} blocks`);
  assert.ok(blocks.filter((b) => b.runnable).length >= 5);
});

test('every baton and start_server command line in README.md and docs/ takes only options the command has, with values it accepts', () => {
  const problems: string[] = [];
  let checked = 0;
  for (const b of blocks) {
    for (const cmd of commandLines(b.text)) {
      for (let i = 0; i < cmd.length; i++) {
        if (cmd[i] !== 'baton' && cmd[i] !== 'start_server') continue;
        checked++;
        for (const p of check(cmd.slice(i))) problems.push(`${b.file}:${b.line}: ${p}\n  ${cmd.join(' ')}`);
        break;
      }
    }
  }
  assert.ok(checked >= 30, `${checked} command lines`);
  assert.deepEqual(problems, []);
});

test('the checker itself refuses an option a command does not have, and a value it refuses', () => {
  assert.deepEqual(check(['baton', 'serve', 'app.js', '--max-workers=2']), []);
  assert.match(check(['baton', 'serve', 'app.js', '--no-such-thing'])[0] ?? '', /no-such-thing/);
  assert.match(check(['baton', 'start', '--port=8080', '--', 'baton', 'serve', 'app.js', '--max-workers=x'])[0] ?? '', /max-workers/);
  assert.match(check(['baton', 'systemd', 'web', '--', '--bogus', '--', 'node', 'app.js'])[0] ?? '', /bogus/);
  assert.match(check(['baton', 'frobnicate'])[0] ?? '', /no such command/);
});

test('each option table in docs/ lists exactly the options of its command --help', () => {
  const helpOf = (command: string) => {
    const [bin, ...sub] = command.split(' ');
    return execFileSync(process.execPath, [bin === 'start_server' ? START_SERVER : BATON, ...sub, '--help'], { encoding: 'utf8' });
  };
  let tables = 0;
  for (const file of docFiles()) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/<!-- generated: options:([a-z_-]+) -->\n([\s\S]*?)<!-- end -->/g)) {
      tables++;
      const command = m[1] === 'start_server' ? 'start_server' : `baton ${m[1]}`;
      const documented = [...(m[2] as string).matchAll(/^\| `--(?:\[no-\])?([a-z0-9-]+)/gm)].map((x) => x[1]).sort();
      const helped = [...helpOf(command).matchAll(/^ {2,4}--(?:\[no-\])?([a-z0-9-]+)/gm)].map((x) => x[1]).sort();
      assert.deepEqual(documented, [...new Set(helped)].sort(), `${basename(file)}: ${command}`);
    }
  }
  assert.ok(tables >= Object.keys(COMMAND_OPTIONS).length, `${tables} option tables`);
});

/** The command pages, and the options of other programs they may name in passing. */
const PAGES: Record<string, { commands: string[]; others: string[] }> = {
  'start_server.md': { commands: ['start_server'], others: ['--opt'] },
  'deploy.md': { commands: ['baton start', 'baton deploy', 'baton status', 'baton upgrade'], others: [] },
  'serve.md': { commands: ['baton serve', 'start_server'], others: [] },
  'reuseport-exec.md': { commands: ['baton reuseport-exec', 'start_server'], others: ['--bind', '--timeout-keep-alive'] },
  'drill.md': { commands: ['baton drill'], others: [] },
};

test('every option a command page names in its text is an option of its command', () => {
  const problems: string[] = [];
  for (const [page, { commands, others }] of Object.entries(PAGES)) {
    const names = new Set([...commands.flatMap((c) => Object.keys(COMMAND_OPTIONS[c] ?? {})), ...others.map((o) => o.slice(2))]);
    const text = readFileSync(join(ROOT, 'docs', page), 'utf8')
      .replace(/<!-- generated[\s\S]*?<!-- end -->/g, '')
      .replace(/```[\s\S]*?```/g, '');
    for (const m of text.matchAll(/`--(?:\[no-\])?([a-z0-9-]+)/g)) {
      const name = m[1] as string;
      if (!names.has(name) && !names.has(name.replace(/^no-/, ''))) problems.push(`${page}: --${name}`);
    }
  }
  assert.deepEqual(problems, []);
});

/** `baton` and `start_server` as an installed package has them: this checkout's, on our Node. */
function binDir(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const [name, entry] of [
    ['baton', BATON],
    ['start_server', START_SERVER],
  ]) {
    writeFileSync(join(bin, name), `#!/bin/sh\nexec ${process.execPath} --conditions=baton-source ${entry} "$@"\n`);
    chmodSync(join(bin, name), 0o755);
  }
  return bin;
}

const netns = spawnSync('unshare', ['--net', 'true']).status === 0 ? false : 'needs a private network namespace (unshare --net: root)';

for (const b of blocks.filter((x) => x.runnable)) {
  test(`${b.file}:${b.line} runs as written`, { timeout: 180_000, skip: netns }, (t) => {
    const dir = tempDir(t);
    const bin = binDir(dir);
    const work = join(dir, 'work');
    mkdirSync(work);
    const script = `set -euo pipefail\nip link set lo up\n${b.text}\n`;
    const r = spawnSync('unshare', ['--net', 'bash', '-c', script], {
      cwd: work,
      encoding: 'utf8',
      timeout: 150_000,
      env: { ...process.env, PATH: `${bin}:${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH}`, NODE_OPTIONS: '' },
    });
    assert.equal(r.status, 0, `${b.file}:${b.line} exited ${r.status ?? r.signal}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-3000)}`);
  });
}
