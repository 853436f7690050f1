// Command-line options, declared once: each option's kind, default, limits
// and help text live in one table, and both the typed values and the help
// come from it. Parsing follows Getopt::Long's defaults, which
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
} & (
  | { kind: 'flag' }
  | { kind: 'string' }
  | { kind: 'list' }
  | { kind: 'integer'; min?: number; max?: number }
  /** A number of seconds, 0 or more, fractions allowed; the value is in seconds. */
  | { kind: 'seconds' }
  | { kind: 'choice'; choices: readonly string[] }
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

/** Flags are true or false and lists are arrays; anything else not given is undefined. */
export type OptionValues<T extends OptionTable> = {
  -readonly [K in keyof T]: T[K] extends { kind: 'flag' | 'list' } ? ValueOf<T[K]> : ValueOf<T[K]> | undefined;
};

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
    if (spec.kind === 'flag') values[name] = false;
    if (spec.kind === 'list') values[name] = [];
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

/** Help lines for the options of `table` (those not hidden), aligned. */
export function optionHelp(table: OptionTable, names: readonly string[] = Object.keys(table), indent = 2): string {
  const WIDTH = 28;
  const lines: string[] = [];
  for (const name of names) {
    const spec = table[name] as OptionSpec;
    if (spec.hidden) continue;
    const value =
      spec.kind === 'flag'
        ? ''
        : `=${spec.placeholder ?? (spec.kind === 'choice' ? spec.choices.join('|') : spec.kind === 'seconds' ? 'SECS' : spec.kind === 'integer' ? 'N' : 'VALUE')}`;
    const head = `${' '.repeat(indent)}--${name}${value}`;
    const [first = '', ...more] = spec.help.split('\n');
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
  const usage = (message: string) => new BatonError(`${message} (see ${command} --help)`, 'ERR_BATON_USAGE', 1);
  if ((values as Record<string, unknown>).help === true) {
    writeOut(help);
    return undefined;
  }
  if (errors.length) throw usage(errors[0] as string);
  return { values, rest, usage };
}
