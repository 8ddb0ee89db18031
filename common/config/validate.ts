import { UserError } from '../user-error.js';
import { checkValue, describeValue, isMapping } from './check-value.js';
import { isSection, type Fields } from './field.js';
import { joinPath, leaves } from './leaves.js';
import { CONFIG, type Config } from './schema.js';
import { suggest } from './suggest.js';

/** Every field's path, where an unknown name may be found at another level. */
const EVERY_PATH = [...leaves(CONFIG)].map(([path]) => path);

/**
 * Checks that `raw` is a complete configuration (every field present, no unknown field, every value of
 * the right type and range) and returns a copy typed as {@link Config}. `origin` (a file name) is put
 * in the error message; without it the message starts with "config:".
 */
export function validateConfig(raw: unknown, origin?: string): Config {
  return checkConfig(raw, false, origin === undefined ? 'config' : `config ${origin}`) as Config;
}

/**
 * Validates the mapping `raw` against the config's fields and returns a copy holding them. `partial`
 * (a config file) allows missing fields and `null` for a section; a complete config does not. Errors
 * are one line starting with `where`.
 */
export function checkConfig(raw: unknown, partial: boolean, where: string): Record<string, unknown> {
  return checkSection(raw, CONFIG, '', partial, where);
}

function checkSection(raw: unknown, fields: Fields, path: string, partial: boolean, where: string): Record<string, unknown> {
  if (!isMapping(raw)) {
    const what = path === '' ? 'must be a mapping of fields' : `field "${path}" must be a mapping`;
    throw new UserError(`${where}: ${what}, got ${describeValue(raw)}`);
  }
  for (const key of Object.keys(raw)) {
    if (!Object.hasOwn(fields, key)) throw new UserError(`${where}: ${unknownField(fields, path, key)}`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(fields)) {
    const entryPath = joinPath(path, key);
    if (!Object.hasOwn(raw, key)) {
      if (partial) continue;
      throw new UserError(`${where}: field "${entryPath}" is missing`);
    }
    const value = raw[key];
    if (isSection(entry)) {
      // `train:` with every line under it commented out is null in YAML: it changes nothing.
      if (partial && value === null) continue;
      out[key] = checkSection(value, entry.fields, entryPath, partial, where);
    } else {
      const problem = checkValue(entry, value);
      if (problem !== undefined) throw new UserError(`${where}: field "${entryPath}" ${problem}`);
      out[key] = value;
    }
  }
  return out;
}

/** "unknown field "x.y"" plus a suggestion when a known name is close or the field belongs elsewhere. */
function unknownField(fields: Fields, path: string, key: string): string {
  const suggestions = suggest(fields, path, key, EVERY_PATH);
  const hint = suggestions.length === 0 ? '' : ` (did you mean ${suggestions.map((s) => `"${s}"`).join(' or ')}?)`;
  return `unknown field "${joinPath(path, key)}"${hint}`;
}
