import test from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { healthClient } from '../common/grpc-health-client.js';
import type { Membership__Output } from '../proto/generated/infobound/v1/Membership.js';
import type { Split__Output } from '../proto/generated/infobound/v1/Split.js';
import { HEALTH_SERVICES, MAX_RECEIVE_MESSAGE_BYTES } from './coordinator-server.js';
import { fakeWorkers, joinInOrder, runStep, sleep, startCoordinator, until } from '../testing/coordinator-harness.js';
import { epochRanges } from './data-plan.js';
import { FakeWorker } from '../testing/fake-worker.js';
import { issueTestClientCertificate, makeTestPki, tempDir } from '../testing/test-helpers.js';
import { readFileSync } from 'node:fs';

const BATCH = 8;

/** Asserts that `call` fails with gRPC status `code` and a message matching `message`. */
async function assertStatus(call: Promise<unknown>, code: grpc.status, message?: RegExp): Promise<void> {
  await assert.rejects(call, (err: grpc.ServiceError) => {
    assert.equal(err.code, code, `status ${grpc.status[err.code]} (${err.details}), expected ${grpc.status[code]}`);
    if (message !== undefined) assert.match(err.details, message);
    return true;
  });
}

/** The positions of the splits, sorted. */
function positions(splits: readonly Split__Output[]): number[] {
  return splits.flatMap((s) => Array.from({ length: s.count }, (_, i) => s.start + i)).sort((a, b) => a - b);
}

test('three workers form generation 1 in join order; steps cover the stream once, across an epoch boundary', async (t) => {
  const EPOCH = 100; // not a multiple of world·batch = 24, so step 5 crosses into epoch 1
  const { coordinator, events } = await startCoordinator(t, { workers: 3, steps: 5, batch: BATCH });
  const workers = fakeWorkers(t, coordinator.address, 3, { epochSize: EPOCH });

  const memberships = await joinInOrder(workers);
  const ids = workers.map((w) => w.id);
  memberships.forEach((m: Membership__Output, i) => {
    assert.equal(m.generation, 1);
    assert.equal(m.rank, i, 'ranks in join order');
    assert.equal(m.world, 3);
    assert.deepEqual(
      m.members.map((x) => [x.worker_id, x.rank]),
      ids.map((id, r) => [id, r]),
    );
    assert.equal(m.committed_step, 0);
    assert.equal(m.state_source_rank, 0);
    assert.equal(m.job, 'infobound');
    const config = JSON.parse(m.config_json) as { train: { batch: number; steps: number } };
    assert.deepEqual([config.train.batch, config.train.steps], [BATCH, 5], 'the config the workers get has the planned batch and steps');
  });
  assert.equal(coordinator.generation, 1);
  assert.deepEqual(
    events.memberships.map((e) => [e.generation, e.joined]),
    [[1, ids]],
  );
  workers.forEach((w) => w.startHeartbeat(50));

  const committed: Split__Output[] = [];
  for (let step = 1; step <= 5; step++) {
    const before = coordinator.cursor;
    const { assignments, acks } = await runStep(workers);
    assignments.forEach((a, rank) => {
      assert.equal(a.generation, 1);
      assert.equal(a.step, step);
      assert.equal(a.done, false);
      assert.equal(a.lr_scale, 1);
      assert.deepEqual(a.splits, [{ start: before + rank * BATCH, count: BATCH }], 'contiguous, in rank order');
    });
    const stepPositions = positions(assignments.flatMap((a) => a.splits));
    assert.deepEqual(
      stepPositions,
      Array.from({ length: 3 * BATCH }, (_, i) => before + i),
      'disjoint and contiguous',
    );
    // Each acknowledgement carries the member's next assignment: the positions after this step's, or
    // `done` after the job's last step.
    acks.forEach((ack, rank) => {
      const next =
        step < 5
          ? { generation: 1, step: step + 1, splits: [{ start: before + (3 + rank) * BATCH, count: BATCH }], lr_scale: 1, done: false }
          : { generation: 1, step: 5, splits: [], lr_scale: 1, done: true };
      assert.deepEqual(ack, { committed: true, committed_step: step, next });
    });
    committed.push(...assignments.flatMap((a) => a.splits));
  }
  assert.equal(coordinator.committedStep, 5);
  assert.equal(coordinator.cursor, 5 * 3 * BATCH);
  assert.deepEqual(
    positions(committed),
    Array.from({ length: coordinator.cursor }, (_, i) => i),
    'every position of [0, cursor) once',
  );

  // Epochs: the 120 positions are all 100 examples of epoch 0, then examples 0..19 of epoch 1.
  const seen = new Map<number, number[]>();
  for (const split of committed) {
    for (const r of epochRanges(split, EPOCH)) {
      const offsets = seen.get(r.epoch) ?? [];
      offsets.push(...Array.from({ length: r.count }, (_, i) => r.offset + i));
      seen.set(r.epoch, offsets);
    }
  }
  assert.deepEqual([...seen.keys()], [0, 1]);
  assert.deepEqual(
    seen.get(0)!.sort((a, b) => a - b),
    Array.from({ length: EPOCH }, (_, i) => i),
    'epoch 0 exactly once',
  );
  assert.deepEqual(
    seen.get(1)!.sort((a, b) => a - b),
    Array.from({ length: 20 }, (_, i) => i),
  );
  assert.deepEqual(
    events.commits.map((c) => [c.step, c.generation, c.world, c.cursor, c.epoch]),
    [
      [1, 1, 3, 24, 0],
      [2, 1, 3, 48, 0],
      [3, 1, 3, 72, 0],
      [4, 1, 3, 96, 0],
      [5, 1, 3, 120, 1],
    ],
  );
  assert.deepEqual(
    events.commits[0]!.reports.map((r) => r.worker_id),
    ids,
    'reports in rank order',
  );

  // The job is over: NextStep says done, once, and the worker stops.
  const final = await workers[0]!.nextStep();
  assert.equal(final.done, true);
  assert.deepEqual(final.splits, []);
  assert.equal(events.done, 1);
  assert.ok(
    workers.every((w) => w.acks > 0 && w.pushes.length === 0),
    'pings acknowledged as unchanged, nothing pushed',
  );
  assert.deepEqual(events.errors, []);
});

test('bad requests are refused with the right status and counted; the coordinator keeps working', async (t) => {
  const { coordinator, events } = await startCoordinator(t, { workers: 2, token: 'sekret' });
  const [w0, w1] = fakeWorkers(t, coordinator.address, 2, { token: 'sekret', epochSize: 100 });
  const intruder = new FakeWorker(coordinator.address, { workerId: 'intruder', token: 'guess' });
  const stranger = new FakeWorker(coordinator.address, { workerId: 'stranger', token: 'sekret' });
  t.after(() => [intruder, stranger].forEach((w) => w.close()));

  await assertStatus(intruder.join(), grpc.status.UNAUTHENTICATED, /^wrong join token$/);
  await assertStatus(intruder.join({ token: '' }), grpc.status.UNAUTHENTICATED);
  await assertStatus(stranger.join({ epochSize: 0 }), grpc.status.INVALID_ARGUMENT, /epoch_size must be at least 1/);
  const unversioned = new FakeWorker(coordinator.address, { workerId: 'unversioned', token: 'sekret', version: '' });
  const huge = new FakeWorker(coordinator.address, { workerId: 'x'.repeat(MAX_RECEIVE_MESSAGE_BYTES + 1), token: 'sekret' });
  t.after(() => [unversioned, huge].forEach((w) => w.close()));
  await assertStatus(unversioned.join(), grpc.status.INVALID_ARGUMENT, /Join needs a version/);
  // Over the size limit: refused before it is parsed, and counted.
  await assertStatus(huge.join(), grpc.status.RESOURCE_EXHAUSTED, /over the limit of 1048576$/);
  await joinInOrder([w0!, w1!]);
  await assertStatus(stranger.join({ epochSize: 90 }), grpc.status.INVALID_ARGUMENT, /epoch_size 90.*job's data has 100/);

  const [a0, a1] = await Promise.all([w0!.nextStep(), w1!.nextStep()]);
  assert.equal(a0!.step, 1);
  await assertStatus(stranger.nextStep(1), grpc.status.NOT_FOUND, /"stranger" is not a member/);
  await assertStatus(w0!.nextStep(7), grpc.status.FAILED_PRECONDITION, /generation 7 is stale: the current generation is 1/);
  await assertStatus(w0!.report(1, { generation: 0 }), grpc.status.FAILED_PRECONDITION, /current generation is 1/);
  await assertStatus(stranger.report(1, { generation: 1, examples: BATCH }), grpc.status.NOT_FOUND);
  await assertStatus(w0!.report(3), grpc.status.FAILED_PRECONDITION, /step 3 is not the next step.*next is 1/);
  await assertStatus(w0!.report(1, { examples: BATCH - 1 }), grpc.status.INVALID_ARGUMENT, /7 examples, but the assignment had 8/);
  // Examples other than its own: the audit trail records assignments, so the report is refused.
  await assertStatus(w0!.report(1, { splitStart: 8 }), grpc.status.INVALID_ARGUMENT, /reports examples from position 8, but rank 0 was assigned position 0$/);

  const first = w0!.report(1);
  await sleep(50);
  await assertStatus(w0!.report(1), grpc.status.ALREADY_EXISTS, /already reported step 1/);
  const [ack0, ack1] = await Promise.all([first, w1!.report(a1!.step)]);
  assert.deepEqual(
    [ack0, ack1].map((a) => [a.committed, a.committed_step, a.next?.step]),
    [
      [true, 1, 2],
      [true, 1, 2],
    ],
  );
  await assertStatus(w1!.report(1), grpc.status.ALREADY_EXISTS, /already committed/);

  // A heartbeat from a non-member ends its stream with NOT_FOUND.
  stranger.startHeartbeat(50);
  await until(() => stranger.streamError !== null, "the stranger's heartbeat stream ends");
  assert.equal(stranger.streamError!.code, grpc.status.NOT_FOUND);

  // An intruder naming a member's worker id, without that member's session credential (or with a
  // guessed one), is refused on every call; the member is untouched.
  const impostor = new FakeWorker(coordinator.address, { workerId: w0!.id, token: 'sekret' });
  t.after(() => impostor.close());
  impostor.membership = w0!.membership;
  for (const guess of ['', 'x'.repeat(43)]) {
    impostor.session = guess;
    await assertStatus(impostor.nextStep(), grpc.status.UNAUTHENTICATED, /session credential its Join issued$/);
    await assertStatus(impostor.report(2, { examples: BATCH, splitStart: 16 }), grpc.status.UNAUTHENTICATED, /session credential its Join issued$/);
    await assertStatus(impostor.leave(), grpc.status.UNAUTHENTICATED, /session credential its Join issued$/);
  }
  impostor.startHeartbeat(50);
  await until(() => impostor.streamError !== null, "the impostor's heartbeat stream ends");
  assert.equal(impostor.streamError!.code, grpc.status.UNAUTHENTICATED);

  assert.deepEqual(coordinator.refused, {
    wrong_token: 2,
    bad_session: 7,
    join_rate: 0,
    certificate_mismatch: 0,
    oversized: 1,
    invalid_join: 2,
    epoch_size_mismatch: 1,
    unknown_worker: 3,
    stale_generation: 2,
    replayed_report: 2,
    wrong_step: 1,
    wrong_example_count: 1,
    wrong_range: 1,
  });
  assert.equal(events.refusals.length, 23);

  // Nothing of that disturbed the job.
  const { acks } = await runStep([w0!, w1!]);
  assert.deepEqual(
    acks.map((a) => a.committed_step),
    [2, 2],
  );
  assert.equal(coordinator.cursor, 2 * 2 * BATCH);
  assert.equal(coordinator.generation, 1);
});

test('a Join waits for the world to fill and gives up at its deadline', async (t) => {
  const { coordinator } = await startCoordinator(t, { workers: 2, waitTimeoutMs: 300 });
  const [w0] = fakeWorkers(t, coordinator.address, 1);
  await assertStatus(w0!.join(), grpc.status.DEADLINE_EXCEEDED, /no generation formed within 300 ms: 1 of 2 workers have joined/);
  // The worker that gave up does not count towards the next attempt's world.
  const later = fakeWorkers(t, coordinator.address, 2, {}, 'v');
  const memberships = await joinInOrder(later);
  assert.deepEqual(
    memberships.map((m) => m.members.map((x) => x.worker_id)),
    [
      ['v0', 'v1'],
      ['v0', 'v1'],
    ],
  );
});

test('health reports SERVING for the server and the Coordinator, NOT_SERVING once close starts', async (t) => {
  const { coordinator } = await startCoordinator(t, { workers: 1 });
  const client = healthClient(coordinator.address);
  t.after(() => client.close());
  for (const service of HEALTH_SERVICES) assert.equal(await client.check(service, 2000), 'SERVING', `service "${service}"`);
  const watch = client.watch('infobound.v1.Coordinator');
  const statuses: string[] = [];
  const notServing = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no NOT_SERVING within 3 s: ${statuses.join(', ')}`)), 3000);
    watch.on('data', (r: { status: string }) => {
      statuses.push(r.status);
      if (r.status !== 'NOT_SERVING') return;
      clearTimeout(timer);
      resolve();
    });
  });
  watch.on('error', () => undefined); // cancelled below
  await sleep(100);
  const closing = coordinator.close();
  await notServing;
  watch.cancel();
  await closing;
  assert.deepEqual(statuses, ['SERVING', 'NOT_SERVING']);
});

test("Joins past a host's rate limit are refused and counted; a joiner's epoch size and a forged Leave cannot touch the job", async (t) => {
  const { coordinator } = await startCoordinator(t, { workers: 2, joinBurst: 4, joinsPerSecond: 0.01 });
  const [w0, w1] = fakeWorkers(t, coordinator.address, 2);
  const [intruder, forger, late] = ['intruder', w0!.id, 'late'].map((workerId) => new FakeWorker(coordinator.address, { workerId }));
  t.after(() => [intruder, forger, late].forEach((w) => w!.close()));
  // The first to join does not set the job's epoch: the coordinator counted its own data.
  await assertStatus(intruder!.join({ epochSize: 7 }), grpc.status.INVALID_ARGUMENT, /epoch_size 7.*job's data has 100/);
  const waiting = w0!.join();
  await sleep(100);
  // A waiting joiner has no session yet: a Leave naming it is a stranger's and withdraws nothing.
  await assertStatus(forger!.leave(), grpc.status.NOT_FOUND, /"w0" is not a member/);
  const [m0, m1] = await Promise.all([waiting, w1!.join()]);
  assert.deepEqual(
    [m0, m1].map((m) => [m.generation, m.world]),
    [
      [1, 2],
      [1, 2],
    ],
  );
  // Four Joins spent the burst; the fifth, long before the next token, is turned away.
  await assertStatus(late!.join({ epochSize: 7 }), grpc.status.INVALID_ARGUMENT);
  await assertStatus(late!.join(), grpc.status.RESOURCE_EXHAUSTED, /too many Joins from 127\.0\.0\.1: try again shortly/);
  assert.equal(coordinator.refused.join_rate, 1);
  assert.equal(coordinator.refused.epoch_size_mismatch, 2);
});

test('under mutual TLS with certificate identity, a worker id other than its certificate names is refused on every call', async (t) => {
  const dir = tempDir(t);
  const pki = makeTestPki(dir, 'job');
  const read = (path: string) => readFileSync(path);
  const { coordinator } = await startCoordinator(t, {
    workers: 1,
    credentials: grpc.ServerCredentials.createSsl(read(pki.ca), [{ private_key: read(pki.key), cert_chain: read(pki.cert) }], true),
    certificateIdentity: true,
  });
  const client = (name: string) => {
    const c = issueTestClientCertificate(dir, 'job', name);
    return grpc.credentials.createSsl(read(pki.ca), read(c.key), read(c.cert));
  };
  const address = coordinator.address.replace('127.0.0.1', 'localhost');
  const w0 = new FakeWorker(address, { workerId: 'w0', credentials: client('w0') });
  // Another process with a certificate of the job's CA, but for w1, claims w0.
  const thief = new FakeWorker(address, { workerId: 'w0', credentials: client('w1') });
  t.after(() => [w0, thief].forEach((w) => w.close()));
  await assertStatus(thief.join(), grpc.status.PERMISSION_DENIED, /worker id "w0" is not a name of the caller's certificate \(w1, w1\)/);
  const m = await w0.join();
  assert.equal(m.world, 1);
  // Even with the member's session (stolen), the thief's certificate gives it away.
  thief.membership = m;
  thief.session = m.session;
  await assertStatus(thief.nextStep(), grpc.status.PERMISSION_DENIED);
  thief.startHeartbeat(50);
  await until(() => thief.streamError !== null, "the thief's heartbeat stream ends");
  assert.equal(thief.streamError!.code, grpc.status.PERMISSION_DENIED);
  assert.equal(coordinator.refused.certificate_mismatch, 3);
  const [a] = await Promise.all([w0.nextStep()]);
  assert.equal(a!.step, 1);
});
