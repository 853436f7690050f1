// Command-line options, declared once: each option's kind, default, limits
// and help text live in one table, and the typed values, the parse and the
// help (its "(default: …)" included) all come from it. Parsing follows Getopt::Long's defaults, which
// Server::Starter's command line relies on and every baton command shares:
// `--opt=v`, `--opt v`, `-opt v`, unambiguous prefixes, case-insensitive
// names, options mixed with other words (permute), `--` ends them. A value
// that is required is the next word even when it starts with a dash.
import { BatonError } from '../errors.ts';
import { writeOut } from '../process/log.ts';

export type OptionSpec = {
  help: string;
  /** The value's name in the help (`--port=N`). */
  placeholder?: string;
  /** Other names accepted for it (older spellings); not offered as prefixes. */
  aliases?: readonly string[];
  /** Not an upstream Server::Starter option: abbreviations resolve to upstream options first. */
  extension?: boolean;
  /** Left out of the help (an alias kept for old scripts, say). */
  hidden?: boolean;
  /**
   * The default as the help states it, where it is not a constant the parse
   * can fill in (the CPU count, an environment variable): the value stays
   * undefined and the command works it out.
   */
  defaultText?: string;
} /** `negatable`: `--no-NAME` sets it false (for a flag that is on by default). */ & (
  | { kind: 'flag'; default?: boolean; negatable?: boolean }
  | { kind: 'string'; default?: string }
  | { kind: 'list' }
  | { kind: 'integer'; min?: number; max?: number; default?: number }
  /** A number of seconds, 0 or more, fractions allowed; the value is in seconds. */
  | { kind: 'seconds'; default?: number }
  | { kind: 'choice'; choices: readonly string[]; default?: string }
);

export type OptionTable = Readonly<Record<string, OptionSpec>>;

type ValueOf<S extends OptionSpec> = S extends { kind: 'flag' }
  ? boolean
  : S extends { kind: 'list' }
    ? string[]
    : S extends { kind: 'integer' | 'seconds' }
      ? number
      : S extends { kind: 'choice'; choices: readonly (infer C)[] }
        ? C
        : string;

/** Flags are true or false, lists are arrays, options with a default have it; anything else not given is undefined. */
export type OptionValues<T extends OptionTable> = {
  -readonly [K in keyof T]: T[K] extends { kind: 'flag' | 'list' } | { default: unknown } ? ValueOf<T[K]> : ValueOf<T[K]> | undefined;
};

type Camel<S extends string> = S extends `${infer A}-${infer B}` ? `${A}${Capitalize<Camel<B>>}` : S;

/** The values keyed the way code reads them: `kill-timeout` as `killTimeout`. */
export type CamelValues<T> = { [K in keyof T as Camel<K & string>]: T[K] };

export function camelValues<T extends Record<string, unknown>>(values: T): CamelValues<T> {
  return Object.fromEntries(
    Object.entries(values).map(([k, v]) => [k.replace(/-(.)/g, (_, c: string) => c.toUpperCase()), v]),
  ) as CamelValues<T>;
}

/** The same table with other defaults (`baton start` is start_server with modern ones). */
export function withDefaults<T extends OptionTable>(table: T, defaults: { [K in keyof T]?: unknown }): T {
  const out: Record<string, OptionSpec> = { ...table };
  for (const [name, value] of Object.entries(defaults)) out[name] = { ...(table[name] as OptionSpec), default: value } as OptionSpec;
  return out as T;
}

export interface ParseResult<T extends OptionTable> {
  values: OptionValues<T>;
  /** The words that are not options, in order (everything after `--` included). */
  rest: string[];
  /** One message per problem, in order, worded as Getopt::Long words them. */
  errors: string[];
  /** True when a non-option word came before an option (the `--` hint). */
  mixed: boolean;
}

const INTEGER = /^[-+]?\d+$/;
const SECONDS = /^\d+(\.\d+)?$|^\.\d+$/;

function find(table: OptionTable, given: string): string | { error: string } {
  const lower = given.toLowerCase();
  for (const [name, spec] of Object.entries(table)) if (name === lower || spec.aliases?.includes(lower)) return name;
  const negated = lower.startsWith('no-') ? table[lower.slice(3)] : undefined;
  if (negated?.kind === 'flag' && negated.negatable) return lower;
  const all = Object.entries(table).filter(([name]) => name.startsWith(lower));
  const upstream = all.filter(([, spec]) => !spec.extension);
  const matches = upstream.length > 0 ? upstream : all;
  if (matches.length === 1) return (matches[0] as [string, OptionSpec])[0];
  if (matches.length === 0) return { error: `Unknown option: ${lower}` };
  return { error: `Option ${lower} is ambiguous (${matches.map(([n]) => n).join(', ')})` };
}

/** The value of `text` for `spec`, or the reason it is not one. */
function convert(name: string, spec: OptionSpec, text: string): { value: unknown } | { error: string } {
  switch (spec.kind) {
    case 'integer': {
      if (!INTEGER.test(text)) return { error: `Value "${text}" invalid for option ${name} (number expected)` };
      const n = Number(text);
      if (spec.min !== undefined && n < spec.min) return { error: `--${name} must be ${spec.min} or more (got ${n})` };
      if (spec.max !== undefined && n > spec.max) return { error: `--${name} must be at most ${spec.max} (got ${n})` };
      return { value: n };
    }
    case 'seconds':
      if (!SECONDS.test(text)) return { error: `--${name} must be a number of seconds, 0 or more (got ${JSON.stringify(text)})` };
      return { value: Number(text) };
    case 'choice':
      if (!spec.choices.includes(text))
        return { error: `--${name} must be one of ${spec.choices.join(', ')} (got ${JSON.stringify(text)})` };
      return { value: text };
    default:
      return { value: text };
  }
}

export function parseOptions<T extends OptionTable>(table: T, argv: readonly string[]): ParseResult<T> {
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(table)) {
    if (spec.kind === 'list') values[name] = [];
    else if (spec.default !== undefined) values[name] = spec.default;
    else if (spec.kind === 'flag') values[name] = false;
  }
  const rest: string[] = [];
  const errors: string[] = [];
  let mixed = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    const m = /^--?([^=]+)(?:=(.*))?$/s.exec(arg);
    if (!m || arg === '-') {
      rest.push(arg);
      continue;
    }
    if (rest.length > 0) mixed = true;
    const name = find(table, m[1] as string);
    if (typeof name !== 'string') {
      errors.push(name.error);
      continue;
    }
    if (!(name in table)) {
      // --no-NAME of a negatable flag
      if (m[2] !== undefined) errors.push(`Option ${name} does not take an argument`);
      else values[name.slice(3)] = false;
      continue;
    }
    const spec = table[name] as OptionSpec;
    let text = m[2];
    if (spec.kind === 'flag') {
      if (text !== undefined) errors.push(`Option ${name} does not take an argument`);
      else values[name] = true;
      continue;
    }
    if (text === undefined) {
      const next = argv[i + 1];
      if (next === undefined) {
        errors.push(`Option ${name} requires an argument`);
        continue;
      }
      text = next;
      i++;
    }
    const v = convert(name, spec, text);
    if ('error' in v) errors.push(v.error);
    else if (spec.kind === 'list') (values[name] as string[]).push(v.value as string);
    else values[name] = v.value;
  }
  return { values: values as OptionValues<T>, rest, errors, mixed };
}

/** The default as the help and the docs state it, if there is one to state. */
export function defaultOf(spec: OptionSpec): string | undefined {
  if (spec.defaultText !== undefined) return spec.defaultText;
  if (spec.kind === 'list' || spec.default === undefined || spec.default === false) return undefined;
  return spec.default === true ? 'on' : String(spec.default);
}

/** How the option is written in the help and the docs: `--name=VALUE`, `--[no-]name`. */
export function optionSyntax(name: string, spec: OptionSpec): string {
  const value =
    spec.kind === 'flag'
      ? ''
      : `=${spec.placeholder ?? (spec.kind === 'choice' ? spec.choices.join('|') : spec.kind === 'seconds' ? 'SECS' : spec.kind === 'integer' ? 'N' : 'VALUE')}`;
  return `--${spec.kind === 'flag' && spec.negatable ? '[no-]' : ''}${name}${value}`;
}

/** " (default: X)", on the help's last line or a line of its own. */
function defaultNote(spec: OptionSpec): string {
  const d = defaultOf(spec);
  if (d === undefined) return '';
  const last = spec.help.split('\n').at(-1) ?? '';
  const note = `(default: ${d})`;
  return last.length + note.length < 70 ? `${last ? ' ' : ''}${note}` : `\n${note}`;
}

/** Help lines for the options of `table` (those not hidden), aligned. */
export function optionHelp(table: OptionTable, names: readonly string[] = Object.keys(table), indent = 2): string {
  const WIDTH = 28;
  const lines: string[] = [];
  for (const name of names) {
    const spec = table[name] as OptionSpec;
    if (spec.hidden) continue;
    const head = `${' '.repeat(indent)}${optionSyntax(name, spec)}`;
    const [first = '', ...more] = `${spec.help}${defaultNote(spec)}`.split('\n');
    if (head.length < indent + WIDTH) lines.push(`${head.padEnd(indent + WIDTH)} ${first}`);
    else lines.push(head, `${' '.repeat(indent + WIDTH + 1)}${first}`);
    for (const line of more) lines.push(`${' '.repeat(indent + WIDTH + 1)}${line}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * A command's own parse: undefined when --help was asked (and the help has
 * been printed); otherwise the values, the other words, and `usage`, which
 * makes a problem the command finds later into the same kind of error. The
 * first problem found here is thrown at once.
 */
export function commandLine<T extends OptionTable>(
  command: string,
  table: T,
  argv: readonly string[],
  help: string,
): { values: OptionValues<T>; rest: string[]; usage: (message: string) => BatonError } | undefined {
  const { values, rest, errors } = parseOptions(table, argv);
  const usage = (message: string) => new BatonError('ERR_BATON_USAGE', `${message} (see ${command} --help)`);
  if ((values as Record<string, unknown>).help === true) {
    writeOut(help);
    return undefined;
  }
  if (errors.length) throw usage(errors[0] as string);
  return { values, rest, usage };
}
