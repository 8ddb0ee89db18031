import test from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../testing/test-helpers.js';
import { UserError } from '../common/user-error.js';
import { readCoordinatorState, STATE_FILE_NAME, writeCoordinatorState, type CoordinatorState } from './coordinator-state-file.js';

const STATE: CoordinatorState = {
  generation: 3,
  committed_step: 9,
  cursor: 216,
  epoch_size: 100,
  checkpoint_step: 8,
  checkpoint_cursor: 192,
  job: 'j',
  run_id: 'r1',
};

test('the state file round-trips, is replaced whole, and leaves no temporary file', async (t) => {
  const dir = join(tempDir(t), 'state'); // created by the first write
  assert.equal(await readCoordinatorState(dir), null, 'no file: a new job');
  await writeCoordinatorState(dir, STATE);
  await writeCoordinatorState(dir, { ...STATE, committed_step: 10, cursor: 240 });
  assert.deepEqual(await readCoordinatorState(dir), { ...STATE, committed_step: 10, cursor: 240 });
  assert.deepEqual(readdirSync(dir), [STATE_FILE_NAME]);
});

test('a state file that cannot be written is a UserError naming it', async (t) => {
  const dir = tempDir(t);
  await writeCoordinatorState(dir, STATE);
  // The state directory path runs through a file: nothing can be created under it.
  const blocked = join(dir, STATE_FILE_NAME, 'nested');
  await assert.rejects(
    writeCoordinatorState(blocked, STATE),
    (err: Error) => err instanceof UserError && err.message.includes(`coordinator state ${blocked}`) && /cannot write/.test(err.message),
  );
});
