import { UserError } from '../user-error.js';
import { checkValue } from './check-value.js';
import type { Field, FlagNamesOf } from './field.js';
import { leaves } from './leaves.js';
import { CONFIG } from './schema.js';

/** The name, without dashes, of a flag that replaces a config field: `bank-size`, `run-dir`, ... */
export type ConfigFlagName = FlagNamesOf<typeof CONFIG>;

/** A flag that replaces a config field. */
export interface ConfigFlag {
  /** As it is typed: `--bank-size`. */
  flag: string;
  /** What the usage line puts after it: `K`. */
  arg: string;
  /** The field's dotted path: `bank.size`. */
  path: string;
  field: Field;
}

/** Which flag replaces which field, by flag name, in the order of the fields; the fields declare them. */
export const CONFIG_FLAGS = Object.fromEntries(
  [...leaves(CONFIG)].flatMap(([path, field]) =>
    field.flag === undefined ? [] : [[field.flag.name, { flag: `--${field.flag.name}`, arg: field.flag.arg, path, field }]],
  ),
) as { readonly [N in ConfigFlagName]: ConfigFlag };

/**
 * Flag values from the command line, by flag name; each replaces one field (see {@link CONFIG_FLAGS}).
 * Flags arrive as strings; a number is taken as it is.
 */
export type ConfigOverrides = { readonly [N in ConfigFlagName]?: string | number };

/**
 * The value flag `name` gives its field, checked exactly as the file's value is; a numeric field takes
 * the number a string spells. An error is one line starting with `source`: the flag, or the
 * environment variable the value came from.
 */
export function flagValue(name: ConfigFlagName, value: string | number, source: string = CONFIG_FLAGS[name].flag): unknown {
  const { field } = CONFIG_FLAGS[name];
  const numeric = field.rule.type === 'int' || field.rule.type === 'number';
  const parsed = numeric && typeof value === 'string' && NUMERIC.test(value.trim()) ? Number(value) : value;
  const problem = checkValue(field, parsed);
  if (problem !== undefined) throw new UserError(`${source} ${problem}`);
  return parsed;
}

/** A decimal number as a flag may spell it (no hex, no empty string, which Number() would take as 0). */
const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** Sets the field of each flag given in `overrides` on `config`. */
export function applyOverrides(config: Record<string, unknown>, overrides: ConfigOverrides): void {
  for (const [name, { path }] of Object.entries(CONFIG_FLAGS) as [ConfigFlagName, ConfigFlag][]) {
    const value = overrides[name];
    if (value === undefined) continue;
    const parts = path.split('.');
    let section = config;
    for (const part of parts.slice(0, -1)) section = section[part] as Record<string, unknown>;
    section[parts.at(-1)!] = flagValue(name, value);
  }
}
