import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from '../common/user-error.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * A command's flags, strictly parsed (no positionals, unknown flags refused), plus `--help`/`-h`; a bad
 * flag is a one-line UserError that points at the command's help.
 */
export function parseFlags<O extends Options>(command: string, argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, strict: true, allowPositionals: false, options: { ...options, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (err) {
    // parseArgs explains the problem in its first sentence; the rest is advice about positionals.
    throw new UserError(`${command}: ${(err as Error).message.split('. ')[0]!.replace(/\.$/, '')} (see infobound ${command} --help)`);
  }
}

/** Parses a flag as an integer ≥ min, with a one-line error naming the flag. */
export function positiveInt(flag: string, value: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UserError(`${flag} must be an integer >= ${min}, got "${value}"`);
  return n;
}
