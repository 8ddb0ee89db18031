import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../user-error.js';
import type { Config } from './schema.js';
import type { DataKind } from './top-level.js';

/** The run directory: `run_dir`, or `runs/<kind>-<timestamp>` when the config names none. */
export function resolveRunDir(config: Pick<Config, 'kind' | 'data' | 'run_dir'>): string {
  return config.run_dir ?? join('runs', `${resolveKind(config)}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
}

/**
 * The data kind the run trains on: `kind` when it is explicit, otherwise `images` when `data` is a
 * directory (but a prepared click-log dataset's, which holds manifest.json) and `clicklog` when it is
 * anything else. Throws a UserError when `data` is given but does
 * not exist, or when `kind` is `auto` and there is no `data` to decide from.
 */
export function resolveKind(config: Pick<Config, 'kind' | 'data'>): DataKind {
  const { kind, data } = config;
  if (data === null) {
    if (kind === 'auto') {
      throw new UserError('no data given: set `data` in the config or pass --data (a click-log file or an IDX directory)');
    }
    return kind;
  }
  let isDirectory: boolean;
  try {
    isDirectory = statSync(data).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new UserError(`data "${data}" does not exist`);
    throw new UserError(`data "${data}" cannot be read: ${code ?? (err as Error).message}`);
  }
  if (kind !== 'auto') return kind;
  // A prepared click-log dataset is a directory with a manifest (worker/dataset/dataset-manifest.ts).
  return isDirectory && !existsSync(join(data, 'manifest.json')) ? 'images' : 'clicklog';
}
