// The parts of docs/ that are generated from the code, so they are written
// once: each block between `<!-- generated: NAME -->` and `<!-- end -->` is
// what GENERATORS[NAME] prints. `node scripts/docs.ts` rewrites them;
// `--check` only says which differ (test/docs.test.ts runs it).
import { globSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultOf, type OptionTable, optionSyntax } from '../src/cli-kit/options.ts';
import { DEPLOY_OPTIONS } from '../src/ctl/deploy.ts';
import { STATUS_OPTIONS } from '../src/ctl/status.ts';
import { SYSTEMD_OPTIONS } from '../src/ctl/systemd.ts';
import { UPGRADE_OPTIONS } from '../src/ctl/upgrade.ts';
import { DRILL_OPTIONS } from '../src/drill/main.ts';
import { ERRORS } from '../src/errors.ts';
import { REUSEPORT_EXEC_OPTIONS } from '../src/reuseport_exec/main.ts';
import { SERVE_OPTIONS } from '../src/serve/main.ts';
import { BATON_START_OPTIONS, START_SERVER_OPTIONS } from '../src/start_server/options.ts';

const ROOT = join(import.meta.dirname, '..');

/** A Markdown table with its columns padded, as the formatter (biome) lays tables out. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Each command's option table, by the words that run it: the one source of its --help and of its docs. */
export const COMMAND_OPTIONS: Record<string, OptionTable> = {
  start_server: START_SERVER_OPTIONS,
  'baton start': BATON_START_OPTIONS,
  'baton serve': SERVE_OPTIONS,
  'baton reuseport-exec': REUSEPORT_EXEC_OPTIONS,
  'baton drill': DRILL_OPTIONS,
  'baton deploy': DEPLOY_OPTIONS,
  'baton status': STATUS_OPTIONS,
  'baton upgrade': UPGRADE_OPTIONS,
  'baton systemd': SYSTEMD_OPTIONS,
};

const cell = (text: string) => text.replaceAll('\n', ' ').replaceAll('|', '\\|');

/** A command's options as a table: how each is written, its default, what it does. */
function optionTable(options: OptionTable): string {
  const rows = Object.entries(options)
    .filter(([, spec]) => !spec.hidden)
    .map(([name, spec]) => [`\`${cell(optionSyntax(name, spec))}\``, cell(defaultOf(spec) ?? ''), cell(spec.help)]);
  return table(['option', 'default', 'what it does'], rows);
}

const GENERATORS: Record<string, () => string> = {
  ...Object.fromEntries(
    Object.entries(COMMAND_OPTIONS).map(([command, options]) => [`options:${command.replace('baton ', '')}`, () => optionTable(options)]),
  ),
  errors: () =>
    table(
      ['code', 'exit', 'what'],
      [
        ...Object.entries(ERRORS).map(([code, e]) => [`\`${code}\``, String(e.exit), e.meaning]),
        [
          '`EADDRINUSE`, `ENOENT`, `EACCES`, `EEXIST`, …',
          'the errno (98, 2, 13, 17)',
          "a system call failed: the errno name is the code, as Perl's `die` exits",
        ],
      ],
    ),
};

const BLOCK = /(<!-- generated: ([a-z0-9:_-]+) -->\n)([\s\S]*?)(<!-- end -->)/g;

export function regenerate(text: string): string {
  return text.replace(BLOCK, (_m, open: string, name: string, _old: string, close: string) => {
    const gen = GENERATORS[name];
    if (!gen) throw new Error(`no generator for "${name}"`);
    return `${open}${gen()}\n${close}`;
  });
}

export function docFiles(): string[] {
  return ['README.md', ...globSync('docs/**/*.md', { cwd: ROOT })].map((f) => join(ROOT, f));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  const stale: string[] = [];
  for (const file of docFiles()) {
    const text = readFileSync(file, 'utf8');
    const next = regenerate(text);
    if (next === text) continue;
    stale.push(file);
    if (!check) writeFileSync(file, next);
  }
  if (check && stale.length) {
    process.stderr.write(`generated blocks out of date (run node scripts/docs.ts): ${stale.join(', ')}\n`);
    process.exitCode = 1;
  }
}
