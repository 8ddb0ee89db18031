import test from 'node:test';
import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { defaultConfig } from '../common/config/mod.js';
import { tempDir } from '../testing/test-helpers.js';
import { UserError } from '../common/user-error.js';
import type { Split__Output } from '../proto/generated/infobound/v1/Split.js';
import { CoordinatorServer } from './coordinator-server.js';
import { fakeWorkers, joinInOrder, runStep, sleep, startCoordinator, until } from '../testing/coordinator-harness.js';
import { readCoordinatorState, stateFilePath } from './coordinator-state-file.js';

const BATCH = 8;

function positions(splits: readonly Split__Output[]): number[] {
  return splits.flatMap((s) => Array.from({ length: s.count }, (_, i) => s.start + i)).sort((a, b) => a - b);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

test('a worker that stops pinging is removed; its step is discarded and re-planned from the committed cursor', async (t) => {
  const { coordinator, events } = await startCoordinator(t, { workers: 3, heartbeatTimeoutMs: 600 });
  const workers = fakeWorkers(t, coordinator.address, 3);
  const [w0, w1, w2] = workers;
  await joinInOrder(workers);
  workers.forEach((w) => w.startHeartbeat(100));

  const committed: Split__Output[] = [];
  for (let step = 1; step <= 2; step++) committed.push(...(await runStep(workers)).assignments.flatMap((a) => a.splits));
  assert.equal(coordinator.cursor, 2 * 3 * BATCH);

  // Step 3 is in flight: w0 and w1 report it, w2 hangs (no report, no pings).
  const attempt = await Promise.all(workers.map((w) => w.nextStep()));
  assert.deepEqual(
    attempt.map((a) => a.splits[0]!.start),
    [48, 56, 64],
  );
  const hung = performance.now();
  w2!.stopHeartbeat();
  const reports = [w0!.report(3), w1!.report(3)].map((p) =>
    p.then(
      () => assert.fail('a discarded step must not be acknowledged'),
      (err: grpc.ServiceError) => err,
    ),
  );

  const [m0, m1] = await Promise.all([w0!, w1!].map((w) => w.waitForMembership((m) => m.generation === 2)));
  const removedAfter = performance.now() - hung;
  assert.ok(removedAfter >= 550 && removedAfter < 2000, `removed after ${removedAfter.toFixed(0)} ms (timeout 600 ms)`);
  for (const [rank, m] of [m0!, m1!].entries()) {
    assert.equal(m.world, 2);
    assert.equal(m.rank, rank, 'the members that stay keep their order');
    assert.equal(m.committed_step, 2);
  }
  assert.deepEqual(
    w0!.pushes.map((m) => m.generation),
    [2],
    'pushed, not only answered',
  );
  assert.deepEqual(events.memberships.at(-1)!.removed, [{ workerId: 'w2', cause: 'heartbeat_timeout' }]);
  for (const err of await Promise.all(reports)) {
    assert.equal(err.code, grpc.status.ABORTED);
    assert.match(err.details, /step 3 was discarded.*roll back to step 2/);
  }
  // The removed worker's stream ends, and it is a stranger now.
  await until(() => w2!.streamError !== null, "the removed worker's heartbeat stream ends");
  assert.equal(w2!.streamError!.code, grpc.status.NOT_FOUND);
  assert.match(w2!.streamError!.details, /removed \(heartbeat_timeout\).*Join again/);
  await assert.rejects(w2!.nextStep(1), (err: grpc.ServiceError) => err.code === grpc.status.NOT_FOUND);

  // Step 3 again, for two workers, from the same cursor; then step 4.
  for (const step of [3, 4]) {
    const before = coordinator.cursor;
    const { assignments, acks } = await runStep([w0!, w1!]);
    assert.deepEqual(
      assignments.map((a) => [a.generation, a.step, a.splits[0]!.start]),
      [
        [2, step, before],
        [2, step, before + BATCH],
      ],
    );
    assert.ok(acks.every((a) => a.committed_step === step));
    committed.push(...assignments.flatMap((a) => a.splits));
  }
  assert.equal(coordinator.cursor, 48 + 2 * 2 * BATCH);
  assert.deepEqual(positions(committed), range(coordinator.cursor), 'no position committed twice, none skipped');
  assert.deepEqual(
    events.commits.map((c) => [c.step, c.world, c.cursor]),
    [
      [1, 3, 24],
      [2, 3, 48],
      [3, 2, 64],
      [4, 2, 80],
    ],
  );
});

test('once the last step has committed, a silent member is kept for the finish timeout (rank 0 evaluating), then removed', async (t) => {
  const { coordinator, events } = await startCoordinator(t, { workers: 2, steps: 1, heartbeatTimeoutMs: 200, finishTimeoutMs: 1500 });
  const [w0, w1] = fakeWorkers(t, coordinator.address, 2);
  await joinInOrder([w0!, w1!]);
  await runStep([w0!, w1!]);
  assert.equal(events.done, 1);
  // Both stay silent (no pings, no calls) far past the heartbeat timeout: still members.
  await sleep(700);
  assert.equal(coordinator.generation, 1);
  assert.deepEqual(events.memberships.at(-1)!.removed, []);
  // Past the finish timeout they are gone, as crashed members.
  await until(() => coordinator.generation > 1, 'removed after the finish timeout');
  assert.deepEqual(
    events.memberships.at(-1)!.removed.map((r) => r.cause),
    ['heartbeat_timeout', 'heartbeat_timeout'],
  );
});

test('a worker joining a running job is admitted at the next step boundary', async (t) => {
  const { coordinator, events } = await startCoordinator(t, { workers: 2 });
  const [w0, w1] = fakeWorkers(t, coordinator.address, 2);
  const [late, later] = fakeWorkers(t, coordinator.address, 2, {}, 'late');
  await joinInOrder([w0!, w1!]);
  [w0!, w1!].forEach((w) => w.startHeartbeat(100));
  await runStep([w0!, w1!]);

  // Step 2 is in flight when `late` joins: it waits for the commit.
  const assignments = await Promise.all([w0!.nextStep(), w1!.nextStep()]);
  let admitted = false;
  const joining = late!.join().then((m) => {
    admitted = true;
    return m;
  });
  await sleep(300);
  assert.equal(admitted, false, 'not admitted while step 2 is in flight');
  assert.equal(coordinator.generation, 1);
  const acks = await Promise.all([w0!.report(2), w1!.report(2)]);
  assert.ok(
    acks.every((a) => a.committed && a.committed_step === 2),
    'the step in flight counted',
  );

  const m = await joining;
  assert.deepEqual([m.generation, m.rank, m.world, m.committed_step, m.state_source_rank], [2, 2, 3, 2, 0]);
  assert.deepEqual(
    m.members.map((x) => x.worker_id),
    ['w0', 'w1', 'late0'],
  );
  late!.startHeartbeat(100);
  await Promise.all([w0!, w1!].map((w) => w.waitForMembership((x) => x.generation === 2)));
  assert.deepEqual([w0!.rank, w1!.rank], [0, 1]);
  await assert.rejects(
    w0!.nextStep(1),
    (err: grpc.ServiceError) => err.code === grpc.status.FAILED_PRECONDITION && /current generation is 2/.test(err.details),
  );
  assert.deepEqual(
    assignments.map((a) => a.step),
    [2, 2],
  );

  // Step 3 is planned for three ranks from the committed cursor.
  const step3 = await runStep([w0!, w1!, late!]);
  assert.deepEqual(
    step3.assignments.map((a) => [a.step, a.splits[0]!.start]),
    [
      [3, 32],
      [3, 40],
      [3, 48],
    ],
  );

  // The step 3 acknowledgements carried step 4's assignments, so step 4 is in flight: a joiner is
  // admitted once it commits.
  assert.deepEqual(
    step3.acks.map((a) => [a.next?.step, a.next?.splits[0]?.start]),
    [
      [4, 56],
      [4, 64],
      [4, 72],
    ],
  );
  const joining4 = later!.join();
  await runStep([w0!, w1!, late!]);
  const m4 = await joining4;
  assert.deepEqual([m4.generation, m4.rank, m4.world, m4.committed_step], [3, 3, 4, 4]);
  assert.deepEqual(
    events.memberships.map((e) => [e.generation, e.joined]),
    [
      [1, ['w0', 'w1']],
      [2, ['late0']],
      [3, ['late1']],
    ],
  );

  // Leave: a new generation without the leaver, at once.
  await w1!.leave();
  await w0!.waitForMembership((x) => x.generation === 4);
  assert.deepEqual(
    w0!.membership!.members.map((x) => x.worker_id),
    ['w0', 'late0', 'late1'],
  );
  assert.deepEqual(events.memberships.at(-1)!.removed, [{ workerId: 'w1', cause: 'left' }]);
  assert.deepEqual(events.leaves, [{ workerId: 'w1', rank: 1, generation: 3, summaryJson: '' }]);
});

test('a worker that restarts and joins again replaces its old self in a new generation', async (t) => {
  const { coordinator, events } = await startCoordinator(t, { workers: 2 });
  const [w0, w1] = fakeWorkers(t, coordinator.address, 2);
  await joinInOrder([w0!, w1!]);
  const again = await w0!.join();
  assert.deepEqual([again.generation, again.world], [2, 2]);
  assert.deepEqual(
    again.members.map((x) => x.worker_id),
    ['w1', 'w0'],
  );
  assert.deepEqual(events.memberships.at(-1)!.removed, [{ workerId: 'w0', cause: 'rejoined' }]);
});

test('a restarted coordinator resumes from the last checkpoint with the next generation', async (t) => {
  const stateDir = tempDir(t, 'infobound-coordinator-');
  const first = await startCoordinator(t, { workers: 2, stateDir });
  const [w0, w1] = fakeWorkers(t, first.coordinator.address, 2);
  await joinInOrder([w0!, w1!]);
  for (let step = 1; step <= 4; step++) {
    const assignments = await Promise.all([w0!.nextStep(), w1!.nextStep()]);
    // Rank 0 writes a checkpoint of step 2, the state step 3 starts from, and says so with step 3.
    await Promise.all([w0!.report(step, { checkpointWritten: step === 3 }), w1!.report(assignments[1]!.step)]);
  }
  assert.equal(first.events.commits[2]!.checkpoint, true);
  await first.coordinator.close();
  const saved = await readCoordinatorState(stateDir);
  assert.match(saved?.run_id ?? '', /^[0-9a-f-]{36}$/);
  assert.deepEqual(saved, {
    generation: 1,
    committed_step: 4,
    cursor: 4 * 2 * BATCH,
    epoch_size: 100,
    checkpoint_step: 2,
    checkpoint_cursor: 2 * 2 * BATCH,
    job: 'infobound',
    run_id: saved?.run_id,
    bank_key: saved?.bank_key,
  });
  assert.equal(Buffer.from(saved!.bank_key!, 'base64url').byteLength, 32);
  assert.equal(statSync(stateFilePath(stateDir)).mode & 0o777, 0o600, 'the state file holds the bank key: owner only');
  // The data is the coordinator's to count: with another count, the job cannot resume.
  await assert.rejects(
    startCoordinator(t, { workers: 2, stateDir, epochSize: 99 }),
    (err: Error) => err instanceof UserError && /had 100 examples per epoch, the data now has 99: the data changed/.test(err.message),
  );

  const second = await startCoordinator(t, { workers: 2, stateDir });
  assert.deepEqual([second.coordinator.committedStep, second.coordinator.cursor, second.coordinator.generation], [2, 32, 1]);
  const [v0, v1] = fakeWorkers(t, second.coordinator.address, 2, {}, 'v');
  await assert.rejects(
    v0!.join({ epochSize: 50 }),
    (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT && /epoch_size 50.*job's data has 100/.test(err.details),
  );
  const memberships = await joinInOrder([v0!, v1!]);
  assert.ok(memberships.every((m) => m.generation === 2 && m.committed_step === 2));
  assert.ok(
    memberships.every((m) => m.run_id === saved?.run_id),
    'a restarted coordinator keeps the run id',
  );
  assert.ok(
    memberships.every((m) => Buffer.from(m.bank_key).toString('base64url') === saved?.bank_key),
    'and the bank key, so the stream written before the restart still verifies',
  );
  const { assignments } = await runStep([v0!, v1!]);
  assert.deepEqual(
    assignments.map((a) => [a.step, a.splits[0]!.start]),
    [
      [3, 32],
      [3, 40],
    ],
  );
  await second.coordinator.close();
  assert.equal((await readCoordinatorState(stateDir))!.committed_step, 3);
});

test('a corrupt state file or one of another job stops the start with a one-line UserError', async (t) => {
  const stateDir = tempDir(t, 'infobound-coordinator-');
  const start = (job?: string): Promise<CoordinatorServer> =>
    CoordinatorServer.start({ config: defaultConfig(), workers: 1, epochSize: 100, stateDir, ...(job === undefined ? {} : { job }) });
  const corrupt: [string, RegExp][] = [
    ['{"generation": 1, "committed', /corrupt, not JSON/],
    ['[]', /corrupt, not a JSON object/],
    [
      JSON.stringify({ generation: 1, committed_step: 2, cursor: 16, epoch_size: 100, checkpoint_step: 0, checkpoint_cursor: 0 }),
      /"job" must be a non-empty string/,
    ],
    [
      JSON.stringify({ generation: 1, committed_step: -2, cursor: 16, epoch_size: 100, checkpoint_step: 0, checkpoint_cursor: 0, job: 'x', run_id: 'r' }),
      /"committed_step" must be a non-negative integer, got -2/,
    ],
    [
      JSON.stringify({ generation: 1, committed_step: 2, cursor: 16, epoch_size: 100, checkpoint_step: 3, checkpoint_cursor: 24, job: 'x', run_id: 'r' }),
      /checkpoint .* is after the commit/,
    ],
  ];
  for (const [text, pattern] of corrupt) {
    writeFileSync(stateFilePath(stateDir), text);
    await assert.rejects(start(), (err: Error) => {
      assert.ok(err instanceof UserError, `${err.name}: ${err.message}`);
      assert.match(err.message, pattern);
      assert.ok(err.message.startsWith(`coordinator state ${stateFilePath(stateDir)}: `));
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
  }
  writeFileSync(
    stateFilePath(stateDir),
    JSON.stringify({ generation: 1, committed_step: 2, cursor: 16, epoch_size: 100, checkpoint_step: 0, checkpoint_cursor: 0, job: 'other', run_id: 'r' }),
  );
  await assert.rejects(start(), (err: Error) => err instanceof UserError && /belongs to job "other", not "infobound"/.test(err.message));
  const resumed = await start('other');
  await resumed.close();
});
