// A small Getopt::Long work-alike with the defaults Server::Starter's CLI relies
// on: `--opt=v`, `--opt v`, `-opt v`, unambiguous prefixes, case-insensitive
// names, options mixed with non-option words (permute), and `--` to end them.

export type OptionKind = 'string' | 'list' | 'integer' | 'flag';

export interface OptionDef {
  name: string;
  kind: OptionKind;
  /** Not an upstream option: abbreviations resolve to upstream options first. */
  extension?: boolean;
}

export type ParsedValues = Record<string, string | string[] | number | boolean | undefined>;

export interface GetoptResult {
  values: ParsedValues;
  rest: string[];
  /** Getopt::Long's messages, one per problem, in order. */
  errors: string[];
  /** True when non-option words came before an option (the `--` hint). */
  mixed: boolean;
}

const INTEGER = /^[-+]?\d+$/;

function findDef(defs: readonly OptionDef[], given: string): OptionDef | string {
  const lower = given.toLowerCase();
  const exact = defs.find((d) => d.name === lower);
  if (exact) return exact;
  const all = defs.filter((d) => d.name.startsWith(lower));
  const upstream = all.filter((d) => !d.extension);
  const matches = upstream.length > 0 ? upstream : all;
  if (matches.length === 1) return matches[0] as OptionDef;
  if (matches.length === 0) return `Unknown option: ${lower}`;
  return `Option ${lower} is ambiguous (${matches.map((d) => d.name).join(', ')})`;
}

export function getopt(argv: readonly string[], defs: readonly OptionDef[]): GetoptResult {
  const values: ParsedValues = {};
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
    const found = findDef(defs, m[1] as string);
    if (typeof found === 'string') {
      errors.push(found);
      continue;
    }
    let value = m[2];
    if (found.kind === 'flag') {
      if (value !== undefined) errors.push(`Option ${found.name} does not take an argument`);
      else values[found.name] = true;
      continue;
    }
    if (value === undefined) {
      // A mandatory value is the next word even when it starts with '-'.
      const next = argv[i + 1];
      if (next === undefined) {
        errors.push(`Option ${found.name} requires an argument`);
        continue;
      }
      value = next;
      i++;
    }
    if (found.kind === 'integer') {
      if (!INTEGER.test(value)) {
        errors.push(`Value "${value}" invalid for option ${found.name} (number expected)`);
        continue;
      }
      values[found.name] = Number(value);
    } else if (found.kind === 'list') {
      const prev = values[found.name];
      values[found.name] = [...(Array.isArray(prev) ? prev : []), value];
    } else {
      values[found.name] = value;
    }
  }
  return { values, rest, errors, mixed };
}
