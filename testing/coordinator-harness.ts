/**
 * Test-only: starts a coordinator on loopback with test-sized timeouts and records its events, and
 * drives groups of {@link FakeWorker}s. Everything started here is closed when the test ends.
 */
import { defaultConfig } from '../common/config/mod.js';
import { tempDir } from './test-helpers.js';
import type { Assignment__Output } from '../proto/generated/infobound/v1/Assignment.js';
import type { Membership__Output } from '../proto/generated/infobound/v1/Membership.js';
import type { StepAck__Output } from '../proto/generated/infobound/v1/StepAck.js';
import { CoordinatorServer, type CommitEvent, type CoordinatorOptions, type LeaveEvent, type MembershipEvent } from '../coordinator/coordinator-server.js';
import { FakeWorker, type FakeWorkerOptions } from './fake-worker.js';
import type { RefusalReason } from '../coordinator/rpc-failure.js';

/** What a test coordinator's observer saw. */
export interface RecordedEvents {
  /** Every commit, in order. */
  commits: CommitEvent[];
  /** Every generation formed, in order. */
  memberships: MembershipEvent[];
  /** Every Leave, in order. */
  leaves: LeaveEvent[];
  /** Every refusal, in order. */
  refusals: { reason: RefusalReason; message: string }[];
  /** How many times `done` was called. */
  done: number;
  /** Internal errors reported. */
  errors: Error[];
}

/** The part of a test context the harness uses. */
interface TestContext {
  after: (fn: () => unknown) => void;
}

/**
 * Starts a coordinator for a test: defaults batch 8, steps 100, epoch size 100, heartbeat timeout 2000 ms, wait
 * timeout 5000 ms, a fresh state directory; closed after the test. A test that passes its own
 * `stateDir` (made before this call) closes the coordinator itself, before the directory goes.
 */
export async function startCoordinator(
  t: TestContext,
  options: Partial<CoordinatorOptions> & Pick<CoordinatorOptions, 'workers'>,
): Promise<{ coordinator: CoordinatorServer; events: RecordedEvents }> {
  const events: RecordedEvents = { commits: [], memberships: [], leaves: [], refusals: [], done: 0, errors: [] };
  // Registered before the state directory's removal: `after` hooks run in order, and the directory
  // must outlive the coordinator's last state-file write, which close() waits for.
  let started: CoordinatorServer | undefined;
  t.after(() => started?.close());
  const coordinator = await CoordinatorServer.start({
    config: defaultConfig(),
    stateDir: options.stateDir ?? tempDir(t, 'infobound-coordinator-'),
    // FakeWorker's default.
    epochSize: 100,
    batch: 8,
    steps: 100,
    heartbeatTimeoutMs: 2000,
    waitTimeoutMs: 5000,
    observer: {
      commit: (e) => events.commits.push(e),
      membership: (e) => events.memberships.push(e),
      left: (e) => events.leaves.push(e),
      refused: (reason, message) => events.refusals.push({ reason, message }),
      done: () => (events.done += 1),
      error: (e) => events.errors.push(e),
    },
    ...options,
  });
  started = coordinator;
  return { coordinator, events };
}

/** `n` fake workers with ids `${prefix}0`, `${prefix}1`, …, closed after the test. */
export function fakeWorkers(t: TestContext, address: string, n: number, options: Omit<FakeWorkerOptions, 'workerId'> = {}, prefix = 'w'): FakeWorker[] {
  const workers = Array.from({ length: n }, (_, i) => new FakeWorker(address, { ...options, workerId: `${prefix}${i}` }));
  t.after(() => workers.forEach((w) => w.close()));
  return workers;
}

/**
 * Joins the workers in array order: each Join starts 100 ms after the previous one, which on loopback
 * is far more than a request takes to arrive, so the coordinator sees them in this order.
 */
export async function joinInOrder(workers: readonly FakeWorker[]): Promise<Membership__Output[]> {
  const joins: Promise<Membership__Output>[] = [];
  for (const worker of workers) {
    joins.push(worker.join());
    await sleep(100);
  }
  return Promise.all(joins);
}

/** One step of every worker: all ask NextStep, then all report; resolves with the assignments (in worker order) and acks. */
export async function runStep(workers: readonly FakeWorker[]): Promise<{ assignments: Assignment__Output[]; acks: StepAck__Output[] }> {
  const assignments = await Promise.all(workers.map((w) => w.nextStep()));
  const acks = await Promise.all(workers.map((w, i) => w.report(assignments[i]!.step)));
  return { assignments, acks };
}

/** Resolves once `condition()` holds (checked every 10 ms); rejects naming `what` after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
