import { mkdirSync } from 'node:fs';
import { UserError } from './user-error.js';

/** Creates an output directory (and its parents); a path that cannot be one is a one-line error naming the flag. */
export function outputDirectory(flag: string, dir: string): string {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new UserError(`${flag} ${dir}: cannot create the directory: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return dir;
}
