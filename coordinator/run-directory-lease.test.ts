// One coordinator per run directory: the lease file, with real files and real processes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { UserError } from '../common/user-error.js';
import { exited, listeningAddress, smallJob, startCli, writeConfig } from '../testing/cluster-test-helpers.js';
import { assertOneLineError, runCli } from '../testing/cli-harness.js';
import { tempDir } from '../testing/test-helpers.js';
import { LEASE_FILE, type LeaseRecord, RunDirectoryLease } from './run-directory-lease.js';

const read = (dir: string) => JSON.parse(readFileSync(join(dir, LEASE_FILE), 'utf8')) as LeaseRecord;
const leaseOf = (dir: string, r: Partial<LeaseRecord>) =>
  writeFileSync(join(dir, LEASE_FILE), JSON.stringify({ host: hostname(), pid: process.pid, token: 1, since: '2026-12-01T00:00:00.000Z', ...r }));

/** The pid of a process that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout as unknown as number;
}

test('a live holder refuses a second lease with one line; release frees it; the next holder’s token is larger', async (t) => {
  const dir = tempDir(t);
  const first = await RunDirectoryLease.acquire(dir);
  t.after(() => first.release());
  assert.deepEqual(read(dir), first.record);
  assert.equal(first.record.token, 1);
  await assert.rejects(RunDirectoryLease.acquire(dir), (err: Error) => {
    assert.ok(err instanceof UserError);
    assert.match(
      err.message,
      new RegExp(
        `^--run-dir .*: held by the coordinator of pid ${process.pid} on ${hostname()} \\(since .*\\); stop it, or give this one another --run-dir \\(if that process is gone, remove .*coordinator\\.lease\\)$`,
      ),
    );
    return true;
  });
  await first.check();
  await first.release();
  assert.ok(!existsSync(join(dir, LEASE_FILE)));
  const second = await RunDirectoryLease.acquire(dir);
  await second.release();
});

test('a lease whose holder is gone is taken over with the next fencing token: a dead pid here, a stale file from elsewhere', async (t) => {
  const dir = tempDir(t);
  leaseOf(dir, { pid: Number(deadPid()), token: 7 });
  const taken = await RunDirectoryLease.acquire(dir);
  assert.equal(taken.record.token, 8);
  assert.equal(read(dir).pid, process.pid);
  await taken.release();

  // Another host's lease: alive while it is refreshed, stale once it is not.
  leaseOf(dir, { host: 'elsewhere', pid: 1, token: 3 });
  await assert.rejects(RunDirectoryLease.acquire(dir, { staleMs: 60_000 }), (err: Error) => /held by the coordinator of pid 1 on elsewhere/.test(err.message));
  const old = new Date(Date.now() - 120_000);
  utimesSync(join(dir, LEASE_FILE), old, old);
  const fresh = await RunDirectoryLease.acquire(dir, { staleMs: 60_000 });
  assert.equal(fresh.record.token, 4);
  await fresh.release();
});

test('a holder whose lease was taken over finds it at its next check, and lost rejects', async (t) => {
  const dir = tempDir(t);
  const lease = await RunDirectoryLease.acquire(dir, { refreshMs: 50 });
  t.after(() => lease.release());
  leaseOf(dir, { host: 'elsewhere', pid: 99, token: 2 });
  // The refresh timer does not hold the process open (a coordinator exits when its job is done).
  const awake = setTimeout(() => undefined, 5000);
  await assert.rejects(lease.lost, (err: Error) =>
    /^coordinator lease .*coordinator\.lease: lost to the coordinator of pid 99 on elsewhere \(token 2\); this coordinator stops writing$/.test(err.message),
  );
  clearTimeout(awake);
  await assert.rejects(lease.check(), (err: Error) => err instanceof UserError && /lost to the coordinator of pid 99/.test(err.message));
  await lease.release();
  assert.equal(read(dir).pid, 99, 'release leaves another holder’s lease alone');
});

test('a second coordinator process on a live run directory exits with one line naming the first', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const runDir = join(dir, 'run');
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 100, sites: 10, seed: 1 });
  const config = writeConfig(dir, 'job', smallJob(data, runDir, { steps: 5 }));
  const first = startCli(['coordinator', '--config', config, '--workers', '2', '--port', '0']);
  t.after(() => first.kill('SIGKILL'));
  await listeningAddress(first);
  const second = await runCli(['coordinator', '--config', config, '--workers', '2', '--port', '0'], { INFOBOUND_TOKEN: 'tok' });
  assertOneLineError(second, new RegExp(`^infobound: --run-dir .*run: held by the coordinator of pid ${first.pid} on ${hostname()} `));
  first.kill('SIGTERM');
  await exited(first);
});
