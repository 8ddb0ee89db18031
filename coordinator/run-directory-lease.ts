import { hostname } from 'node:os';
import { open, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../common/user-error.js';

/** The lease file in a run directory. */
export const LEASE_FILE = 'coordinator.lease';

/** What a lease file records of its holder. */
export interface LeaseRecord {
  host: string;
  pid: number;
  /** The fencing token: one more than the lease it took over, so a later holder's is always larger. */
  token: number;
  since: string;
}

/** Options of {@link RunDirectoryLease.acquire}. */
export interface LeaseOptions {
  /** A lease of another host not refreshed for this long is stale and may be taken over. @default 30000 */
  staleMs?: number;
  /** How often the holder refreshes its lease and checks that it still holds it. @default 5000 */
  refreshMs?: number;
}

/**
 * One coordinator per run directory: an exclusive lease file created with O_EXCL, refreshed while
 * held, and carrying a fencing token. A second coordinator on the same directory is refused with one
 * line naming the holder; a lease whose holder is gone (its process on this host has exited, or its
 * file has not been refreshed for `staleMs`) is taken over by renaming it away first, so that of two
 * contenders exactly one wins. The holder checks its token before every state write and on every
 * refresh; finding another's, it stops (`lost` rejects).
 */
export class RunDirectoryLease {
  /** Rejects once the lease is found to be another's: the job must stop writing. */
  readonly lost: Promise<never>;
  private loseWith!: (err: Error) => void;
  private readonly timer: NodeJS.Timeout;
  private released = false;

  private constructor(
    readonly path: string,
    readonly record: LeaseRecord,
    refreshMs: number,
  ) {
    this.lost = new Promise<never>((_, reject) => {
      this.loseWith = reject;
    });
    // Nobody need await `lost` to keep the process from an unhandled rejection.
    this.lost.catch(() => undefined);
    this.timer = setInterval(() => void this.refresh(), refreshMs);
    this.timer.unref();
  }

  /** Takes the lease on `dir`, or throws a one-line {@link UserError} naming the live holder. */
  static async acquire(dir: string, o: LeaseOptions = {}): Promise<RunDirectoryLease> {
    const path = join(dir, LEASE_FILE);
    const staleMs = o.staleMs ?? 30_000;
    let previous = 0;
    for (let attempt = 0; attempt < 5; attempt++) {
      const record: LeaseRecord = { host: hostname(), pid: process.pid, token: previous + 1, since: new Date().toISOString() };
      try {
        const handle = await open(path, 'wx');
        try {
          await handle.writeFile(`${JSON.stringify(record)}\n`, 'utf8');
          await handle.sync();
        } finally {
          await handle.close();
        }
        return new RunDirectoryLease(path, record, o.refreshMs ?? 5000);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new UserError(`--run-dir ${dir}: cannot create ${LEASE_FILE}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
      }
      const holder = await readLease(path);
      if (holder === null) continue;
      if (holder.record === null && Date.now() - holder.mtimeMs < staleMs) {
        // Being written by a contender that just created it, or cut short by a crash: look again.
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      if (holder.record !== null && isAlive(holder.record, holder.mtimeMs, staleMs)) {
        const r = holder.record;
        throw new UserError(
          `--run-dir ${dir}: held by the coordinator of pid ${r.pid} on ${r.host} (since ${r.since}); stop it, or give this one another --run-dir (if that process is gone, remove ${path})`,
        );
      }
      // Its holder is gone: claim it by renaming it away (only one contender's rename succeeds).
      previous = Math.max(previous, holder.record?.token ?? 0);
      await rename(path, `${path}.stale-${process.pid}`).then(
        () => rm(`${path}.stale-${process.pid}`, { force: true }),
        () => undefined,
      );
    }
    throw new UserError(`--run-dir ${dir}: could not take ${LEASE_FILE}: other coordinators keep taking it`);
  }

  /** Throws, and marks the lease lost, unless the file still carries this holder's token. */
  async check(): Promise<void> {
    const now = await readLease(this.path);
    if (now?.record?.token === this.record.token && now.record.pid === this.record.pid && now.record.host === this.record.host) return;
    const by = now?.record ? ` to the coordinator of pid ${now.record.pid} on ${now.record.host} (token ${now.record.token})` : ' (its file is gone)';
    const err = new UserError(`coordinator lease ${this.path}: lost${by}; this coordinator stops writing`);
    this.loseWith(err);
    throw err;
  }

  /** Gives the lease up (the file is removed if it is still this holder's). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    const now = await readLease(this.path);
    if (now?.record?.token === this.record.token && now.record.pid === this.record.pid) await rm(this.path, { force: true });
  }

  private async refresh(): Promise<void> {
    if (this.released) return;
    try {
      await this.check();
      const t = new Date();
      await utimes(this.path, t, t);
    } catch {
      clearInterval(this.timer);
    }
  }
}

/** The lease file's record (null when unreadable) and modification time; null when there is no file. */
async function readLease(path: string): Promise<{ record: LeaseRecord | null; mtimeMs: number } | null> {
  try {
    const [text, s] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    let record: LeaseRecord | null = null;
    try {
      const r = JSON.parse(text) as Partial<LeaseRecord>;
      if (typeof r.host === 'string' && Number.isSafeInteger(r.pid) && Number.isSafeInteger(r.token) && typeof r.since === 'string') record = r as LeaseRecord;
    } catch {
      // A lease being written, or cut short by a crash: no record.
    }
    return { record, mtimeMs: s.mtimeMs };
  } catch {
    return null;
  }
}

/** Whether a lease's holder may still be running: its process, on this host; its refreshes, elsewhere. */
function isAlive(r: LeaseRecord, mtimeMs: number, staleMs: number): boolean {
  if (r.host !== hostname()) return Date.now() - mtimeMs < staleMs;
  try {
    process.kill(r.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
