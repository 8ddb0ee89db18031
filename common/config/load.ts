import { applyOverrides, type ConfigOverrides } from './flags.js';
import { isMapping } from './check-value.js';
import { defaultConfig } from './defaults.js';
import { readYaml } from './read-yaml.js';
import type { Config } from './schema.js';
import { checkConfig, validateConfig } from './validate.js';

/**
 * Builds the run configuration: the defaults, then the YAML file at `path` when given (any subset of
 * the fields), then the flag `overrides`. Throws a one-line UserError naming the file or flag for a
 * missing or unreadable file, a YAML syntax error (with its line), an unknown field (with the closest
 * known name) or a value of the wrong type or out of range.
 */
export function loadConfig(path?: string, overrides: ConfigOverrides = {}): Config {
  const config = defaultConfig() as Record<string, unknown>;
  if (path !== undefined) {
    const where = `config ${path}`;
    // An empty file is a valid config that changes nothing.
    mergeInto(config, checkConfig(readYaml(path, where) ?? {}, true, where));
  }
  applyOverrides(config, overrides);
  return validateConfig(config);
}

/** Copies the fields of a validated partial config onto `target`, section by section. */
function mergeInto(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    if (isMapping(value)) mergeInto(target[key] as Record<string, unknown>, value);
    else target[key] = value;
  }
}
