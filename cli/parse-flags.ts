import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CONFIG_FLAGS, flagValue, type ConfigFlagName } from '../common/config/mod.js';
import { UserError } from '../common/user-error.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * A command's flags, strictly parsed (no positionals, unknown flags refused), plus `--help`/`-h`; a bad
 * flag is a one-line UserError that points at the command's help.
 */
export function parseFlags<O extends Options>(command: string, argv: string[], options: O) {
  return parseCommandLine(command, argv, options, false).values;
}

/** As {@link parseFlags}, for a command that also takes operands (`allowPositionals`). */
export function parseCommandLine<O extends Options>(command: string, argv: string[], options: O, allowPositionals: boolean) {
  try {
    return parseArgs({ args: argv, strict: true, allowPositionals, options: { ...options, help: { type: 'boolean', short: 'h' } } });
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

/** Parses a TCP port flag: an integer in [0, 65535] (0: any free port), with a one-line error naming the flag. */
export function portNumber(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UserError(`${flag} must be a port number in [0, 65535], got "${value}"`);
  return n;
}

/**
 * The backend and device a command runs on: the flag, else INFOBOUND_BACKEND / INFOBOUND_DEVICE from
 * the environment (how a container image picks its default: the GPU image's cuda), else the config's.
 */
export function environmentOverrides(
  flags: { backend?: string | undefined; device?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): { backend?: string; device?: string } {
  const fromEnvironment = [
    ['backend', 'INFOBOUND_BACKEND', env.INFOBOUND_BACKEND],
    ['device', 'INFOBOUND_DEVICE', env.INFOBOUND_DEVICE],
  ] as const;
  const out: { backend?: string; device?: string } = {};
  for (const [name, variable, value] of fromEnvironment) {
    const chosen = flags[name] ?? value;
    if (chosen === undefined || chosen === '') continue;
    // A flag's value is checked with the rest of the config; the variable's here, so the error names it.
    if (flags[name] === undefined) flagValue(name, chosen, variable);
    out[name] = chosen;
  }
  return out;
}

/** The parseArgs entries of the config flags `names` (each takes a value), for a command's flag table. */
export function configFlagOptions<const N extends ConfigFlagName>(names: readonly N[]): { [K in N]: { type: 'string' } } {
  return Object.fromEntries(names.map((name) => [name, { type: 'string' }])) as { [K in N]: { type: 'string' } };
}

/** The usage words of the config flags `names`: `[--bank-size K]`. */
export function configFlagUsage(names: readonly ConfigFlagName[]): string[] {
  return names.map((name) => `[${CONFIG_FLAGS[name].flag} ${CONFIG_FLAGS[name].arg}]`);
}

/** `usage: infobound COMMAND` and the flags' `words`, wrapped at 100 columns under the first flag. */
export function usageLine(command: string, words: string[]): string {
  const head = `usage: infobound ${command}`;
  const lines = [head];
  for (const word of words) {
    if (lines.at(-1)!.length + 1 + word.length > 100) lines.push(' '.repeat(head.length));
    lines[lines.length - 1] += ` ${word}`;
  }
  return lines.join('\n');
}
