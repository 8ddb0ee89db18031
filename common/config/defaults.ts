import { isSection, type Fields } from './field.js';
import { CONFIG, type Config } from './schema.js';

/** A fresh copy of the default configuration. */
export function defaultConfig(): Config {
  return defaultsOf(CONFIG) as Config;
}

function defaultsOf(fields: Fields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, entry] of Object.entries(fields)) out[name] = isSection(entry) ? defaultsOf(entry.fields) : entry.default;
  return out;
}
