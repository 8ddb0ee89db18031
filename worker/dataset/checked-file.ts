import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { UserError } from '../../common/user-error.js';

/** The SHA-256 of `data` in hex, as a manifest records it. */
export function sha256Of(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * A dataset file's bytes, checked against the manifest's SHA-256 before anything else reads them: a
 * missing, truncated or altered file is a one-line UserError naming it (`what`: "dataset shard").
 */
export async function readChecked(path: string, sha256: string, what: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new UserError(`${what} ${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (sha256Of(bytes) !== sha256) throw new UserError(`${what} ${path}: corrupt (its SHA-256 is not the manifest's): prepare the dataset again`);
  return bytes;
}
