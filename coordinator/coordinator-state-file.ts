/**
 * The coordinator's durable state, `coordinator.json` in its state directory: what a restarted
 * coordinator needs to resume the job. Written atomically (temp file, fsync, rename, fsync of the
 * directory) so a crash leaves the previous version, never a torn one.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDirectory } from '../common/sync-directory.js';
import { UserError } from '../common/user-error.js';

/** Name of the state file inside the coordinator's state directory. */
export const STATE_FILE_NAME = 'coordinator.json';

/** What the state file holds (field names as in the file). */
export interface CoordinatorState {
  /** The last generation formed; a restarted coordinator's first generation is one more, so none repeats. */
  generation: number;
  /**
   * The last committed step (0: none) as of the last write: written at checkpoints, generation changes
   * and shutdown, not at every commit; a restart resumes from `checkpoint_step`.
   */
  committed_step: number;
  /** Stream position after the committed step: where the next step starts (see data-plan.ts). */
  cursor: number;
  /** Examples per epoch the members agreed on; joiners must have the same. */
  epoch_size: number;
  /** The last step whose model checkpoint a member reported durable (0: none): where a restart resumes. */
  checkpoint_step: number;
  /** The cursor after `checkpoint_step`. */
  checkpoint_cursor: number;
  /** The job's name; a coordinator of another job refuses the file. */
  job: string;
  /** Identity of this run of the job (random, fixed when the job starts), sent to workers as Membership.run_id. */
  run_id: string;
  /**
   * The run's bank key, base64url (Membership.bank_key): bank messages are signed under it, so it
   * must outlive a coordinator restart for a rebuild to verify the stream. A secret: the file is
   * written readable by its owner only. Absent in files of older versions (a new key is made).
   */
  bank_key?: string;
}

const COUNTERS = ['generation', 'committed_step', 'cursor', 'epoch_size', 'checkpoint_step', 'checkpoint_cursor'] as const;

/** Path of the state file in `stateDir`. */
export function stateFilePath(stateDir: string): string {
  return join(stateDir, STATE_FILE_NAME);
}

/**
 * Reads the state file of `stateDir`: null when there is none (a new job), the state when it is
 * valid, and a one-line {@link UserError} naming the file when it cannot be read or is corrupt
 * (not JSON, a field missing or out of range, or a checkpoint after the committed step).
 */
export async function readCoordinatorState(stateDir: string): Promise<CoordinatorState | null> {
  const path = stateFilePath(stateDir);
  const fail = (problem: string): UserError => new UserError(`coordinator state ${path}: ${problem}`);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return null;
    throw fail(`cannot read: ${e.code ?? e.message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw fail(`corrupt, not JSON (${firstLine((err as Error).message)})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fail('corrupt, not a JSON object');
  const record = raw as Record<string, unknown>;
  for (const key of COUNTERS) {
    const value = record[key];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw fail(`corrupt, "${key}" must be a non-negative integer, got ${JSON.stringify(value) ?? 'nothing'}`);
    }
  }
  if (typeof record.job !== 'string' || record.job === '') throw fail('corrupt, "job" must be a non-empty string');
  if (typeof record.run_id !== 'string' || record.run_id === '') throw fail('corrupt, "run_id" must be a non-empty string');
  if (record.bank_key !== undefined && (typeof record.bank_key !== 'string' || Buffer.from(record.bank_key, 'base64url').byteLength < 16)) {
    throw fail('corrupt, "bank_key" must be a base64url key of at least 16 bytes');
  }
  const fields = record.bank_key === undefined ? [...COUNTERS, 'job', 'run_id'] : [...COUNTERS, 'job', 'run_id', 'bank_key'];
  const state = Object.fromEntries(fields.map((k) => [k, record[k]])) as unknown as CoordinatorState;
  if (state.epoch_size === 0) throw fail('corrupt, "epoch_size" must be at least 1');
  if (state.checkpoint_step > state.committed_step || state.checkpoint_cursor > state.cursor) {
    throw fail(
      `corrupt, checkpoint (step ${state.checkpoint_step}, cursor ${state.checkpoint_cursor}) is after the commit (step ${state.committed_step}, cursor ${state.cursor})`,
    );
  }
  return state;
}

/**
 * Writes `state` to the state file of `stateDir` (created if missing) atomically. I/O failures are
 * {@link UserError}s naming the file; the temporary file is removed and the previous state file stays.
 */
export async function writeCoordinatorState(stateDir: string, state: CoordinatorState): Promise<void> {
  const path = stateFilePath(stateDir);
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let handle: FileHandle | undefined;
  try {
    await mkdir(stateDir, { recursive: true });
    // Owner only: the file holds the run's bank key.
    handle = await open(tmp, 'wx', 0o600);
    await handle.writeFile(JSON.stringify(state, null, 2) + '\n', 'utf8');
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, path);
    await syncDirectory(stateDir);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
    const e = err as NodeJS.ErrnoException;
    throw new UserError(`coordinator state ${path}: cannot write: ${e.code ?? e.message}`, { cause: err });
  }
}

function firstLine(text: string): string {
  return text.split('\n')[0]!;
}
