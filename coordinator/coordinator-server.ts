/**
 * The Coordinator service of proto/infobound.proto (docs/architecture.md §2, §3, §5): membership and
 * generations, the data plan, step commits and the durable state a restart resumes from.
 *
 * One coordinator per job. Workers Join (the first generation forms once `workers` have joined),
 * keep a Heartbeat stream open, and loop NextStep → train → ReportStep; a step commits when every
 * member of the generation has reported it. A membership change (join, leave, heartbeat timeout)
 * forms a new generation, pushed at once to every member's heartbeat stream; joiners are admitted at
 * a step boundary, while a removal discards the step in flight, which is planned again for the new
 * generation from the committed cursor. Every blocking call has a deadline.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Config } from '../common/config/mod.js';
import { CoordinatorService } from '../common/proto.js';
import { OversizedRequest, hardReceiveLimit, sizeLimitedService } from '../common/size-limited-service.js';
import { UserError } from '../common/user-error.js';
import type { Assignment } from '../proto/generated/infobound/v1/Assignment.js';
import type { CoordinatorHandlers } from '../proto/generated/infobound/v1/Coordinator.js';
import type { HeartbeatPing__Output } from '../proto/generated/infobound/v1/HeartbeatPing.js';
import type { JoinRequest__Output } from '../proto/generated/infobound/v1/JoinRequest.js';
import type { LeaveAck } from '../proto/generated/infobound/v1/LeaveAck.js';
import type { LeaveRequest__Output } from '../proto/generated/infobound/v1/LeaveRequest.js';
import type { Member__Output } from '../proto/generated/infobound/v1/Member.js';
import type { Membership } from '../proto/generated/infobound/v1/Membership.js';
import type { MembershipUpdate } from '../proto/generated/infobound/v1/MembershipUpdate.js';
import type { StepAck } from '../proto/generated/infobound/v1/StepAck.js';
import type { StepReport__Output } from '../proto/generated/infobound/v1/StepReport.js';
import type { StepRequest__Output } from '../proto/generated/infobound/v1/StepRequest.js';
import type { AuthContext } from '@grpc/grpc-js/build/src/auth-context.js';
import { certificateNames } from './certificate-identity.js';
import { ChangeWaiters } from './change-waiters.js';
import { readCoordinatorState, stateFilePath, writeCoordinatorState } from './coordinator-state-file.js';
import { epochOf } from './data-plan.js';
import { JoinRateLimiter, peerHost } from './join-rate-limiter.js';
import { Roster, type RemovalCause, type WorkerEntry } from './membership.js';
import { REFUSAL_REASONS, RpcFailure, refusal, type RefusalReason } from './rpc-failure.js';
import { StepLedger } from './step-ledger.js';

/**
 * Largest request the coordinator parses: coordinator requests are a few hundred bytes (the largest
 * is a Leave carrying a summary), so anything near this is malformed or hostile. Up to four times this
 * a request is refused with RESOURCE_EXHAUSTED and counted (`oversized`); beyond, gRPC refuses it
 * from its declared length, unread and uncounted.
 */
export const MAX_RECEIVE_MESSAGE_BYTES = 1024 * 1024;

/** Service names the health service reports: the server as a whole ('') and the Coordinator. */
export const HEALTH_SERVICES = ['', 'infobound.v1.Coordinator'] as const;

/** How long close() lets calls finish before it cuts the connections. */
const SHUTDOWN_GRACE_MS = 2000;

/** A step that committed, as {@link CoordinatorObserver.commit} sees it. */
export interface CommitEvent {
  /** The committed step. */
  step: number;
  /** The generation that computed it. */
  generation: number;
  /** Members of that generation. */
  world: number;
  /** Epoch of the stream position `cursor` (floor(cursor / epoch_size)): epochs completed so far. */
  epoch: number;
  /** Examples in an epoch: the stream positions of epoch e are [e·epochSize, (e+1)·epochSize). */
  epochSize: number;
  /** The examples each member was assigned, in rank order: [start position, count]. */
  ranges: [number, number][];
  /** Stream position after the step: the next step starts here. */
  cursor: number;
  /** Whether a member reported a durable checkpoint of the state this step started from (the previous commit). */
  checkpoint: boolean;
  /** Every member's report, in rank order. */
  reports: StepReport__Output[];
}

/** A generation that formed, as {@link CoordinatorObserver.membership} sees it. */
export interface MembershipEvent {
  /** Its number. */
  generation: number;
  /** Members in rank order (empty when every member left and no joiner was admitted). */
  members: Member__Output[];
  /** The last committed step: where its members start. */
  committedStep: number;
  /** Worker ids admitted into this generation. */
  joined: string[];
  /** Members of the previous generation that are gone, and why. */
  removed: { workerId: string; cause: RemovalCause }[];
}

/** A member that left on purpose, as {@link CoordinatorObserver.left} sees it. */
export interface LeaveEvent {
  /** Its worker id. */
  workerId: string;
  /** Its rank in the generation it left. */
  rank: number;
  /** The generation it left. */
  generation: number;
  /** Its final figures (LeaveRequest.summary_json), '' when it sent none. */
  summaryJson: string;
}

/** Callbacks on the coordinator's events, for logs and metrics. They run synchronously: keep them short. */
export interface CoordinatorObserver {
  /** A step committed. */
  commit?(event: CommitEvent): void;
  /** A new generation formed (and was pushed to the members' heartbeat streams). */
  membership?(event: MembershipEvent): void;
  /** A member left with Leave (called after the generation without it formed). */
  left?(event: LeaveEvent): void;
  /** A request was refused (also counted in {@link CoordinatorServer.refused}). */
  refused?(reason: RefusalReason, message: string): void;
  /** The last step of the job committed: workers are told `done` by NextStep. */
  done?(): void;
  /** Something failed inside the coordinator: the state file could not be written, or a bug. */
  error?(error: Error): void;
}

/** Options of {@link CoordinatorServer.start}. */
export interface CoordinatorOptions {
  /** Address to listen on. Default '127.0.0.1' (loopback: expose it on purpose, e.g. '0.0.0.0' in a pod). */
  host?: string;
  /** Port to listen on; 0 picks a free one (see {@link CoordinatorServer.address}). Default 0. */
  port?: number;
  /** TLS or insecure server credentials. Default insecure. */
  credentials?: grpc.ServerCredentials;
  /** Shared secret a Join must carry (compared in constant time), or null for none. Default null. */
  token?: string | null;
  /**
   * Examples per epoch of the job's data, counted by the coordinator from its own config (never taken
   * from a joiner): a Join reporting another count is refused, and so is a state file that says another.
   */
  epochSize: number;
  /**
   * Under mutual TLS: a call's worker id must be a name of the caller's client certificate (its CN or a
   * DNS subject alternative name), so that only the holder of a worker's key can act as that worker. Default false.
   */
  certificateIdentity?: boolean;
  /** Joins let through at once from one host, then {@link joinsPerSecond} a second. @default max(64, 2 × workers) */
  joinBurst?: number;
  /** Joins a second from one host once its burst is spent (a fraction is one every so many seconds). @default 8 */
  joinsPerSecond?: number;
  /** World size of the first generation: Joins wait until this many workers have joined. */
  workers: number;
  /** Steps of the whole job. Default `config.train.steps`. */
  steps?: number;
  /** Examples per worker per step. Default `config.train.batch`. */
  batch?: number;
  /**
   * The job's configuration, sent to workers in every Membership as `config_json` (with
   * `train.steps` and `train.batch` set to this coordinator's `steps` and `batch`).
   */
  config: Config;
  /** The job's name, sent to workers and recorded in the state file. Default 'infobound'. */
  job?: string;
  /** Directory of the state file `coordinator.json` (created if missing); an existing one is resumed. */
  stateDir: string;
  /** The run directory's lease, checked before every state write (the fencing token). */
  lease?: { check(): Promise<void> };
  /** A member not heard from (ping or RPC) for this long is removed. Default 3000 ms. */
  heartbeatTimeoutMs?: number;
  /**
   * Once the job's last step has committed, a member is removed only after this long without a word:
   * rank 0's evaluation may hold its heartbeats back, and losing it would lose the summary. @default 600000
   */
  finishTimeoutMs?: number;
  /** Deadline of every blocking RPC (Join, NextStep, ReportStep) on the coordinator's side. Default 60000 ms. */
  waitTimeoutMs?: number;
  /** Event callbacks. */
  observer?: CoordinatorObserver;
}

/** The settings a running coordinator uses (options with defaults applied). */
interface Settings {
  workers: number;
  steps: number;
  batch: number;
  job: string;
  stateDir: string;
  lease: { check(): Promise<void> } | null;
  heartbeatTimeoutMs: number;
  finishTimeoutMs: number;
  waitTimeoutMs: number;
  configJson: string;
  /** SHA-256 of the join token, or null when Join needs none. */
  tokenDigest: Buffer | null;
  certificateIdentity: boolean;
  observer: CoordinatorObserver;
}

type HeartbeatCall = grpc.ServerDuplexStream<HeartbeatPing__Output, MembershipUpdate>;

/** A running Coordinator service. Create it with {@link CoordinatorServer.start}. */
export class CoordinatorServer {
  /**
   * Requests refused so far, by reason: zero for every reason at start. A correct worker of the
   * current generation is never refused, so these count bugs, stale workers and intruders.
   */
  readonly refused: Record<RefusalReason, number> = Object.fromEntries(REFUSAL_REASONS.map((r) => [r, 0])) as Record<RefusalReason, number>;

  private readonly waiters = new ChangeWaiters();
  private readonly health = new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((s) => [s, 'SERVING' as const])));
  /** Each member's heartbeat stream, where new generations are pushed. */
  private readonly streams = new Map<WorkerEntry, HeartbeatCall>();
  /** Every open heartbeat stream, including those that have not identified their worker yet. */
  private readonly openStreams = new Set<HeartbeatCall>();
  /** Examples per epoch of the job's data (the coordinator's own count). */
  private readonly epochSize: number;
  private readonly joinLimiter: JoinRateLimiter;
  /** State-file writes run one after the other; this is the end of the chain. */
  private writes: Promise<void> = Promise.resolve();
  /** The write of the last commit that moved the checkpoint: ReportStep answers once it is durable. */
  private commitWrite: Promise<void> = Promise.resolve();
  private sweepTimer: NodeJS.Timeout | undefined;
  private boundAddress = '';
  private closing = false;
  private closed: Promise<void> | undefined;
  /** The job's peer credential (Membership.peer_credential), told to members only; new with every coordinator start. */
  private readonly peerCredential = randomBytes(32).toString('base64url');

  private constructor(
    private readonly server: grpc.Server,
    private readonly settings: Settings,
    private readonly roster: Roster,
    private readonly ledger: StepLedger,
    epochSize: number,
    joinLimiter: JoinRateLimiter,
    /** This run of the job (Membership.run_id). */
    private readonly runId: string,
    /** The run's bank key (Membership.bank_key), kept in the state file with the run id. */
    private readonly bankKey: Buffer,
  ) {
    this.epochSize = epochSize;
    this.joinLimiter = joinLimiter;
  }

  /**
   * Starts a coordinator: reads the state file of `stateDir` (resuming the job from its last
   * checkpoint when there is one), binds the server and serves Coordinator and grpc.health.v1.Health.
   * Bad options, a corrupt state file, a state file of another job or an address that cannot be bound
   * are {@link UserError}s.
   */
  static async start(options: CoordinatorOptions): Promise<CoordinatorServer> {
    const { config, stateDir } = options;
    const settings: Settings = {
      workers: positiveInteger('workers', options.workers),
      steps: positiveInteger('steps', options.steps ?? config.train.steps),
      batch: positiveInteger('batch', options.batch ?? config.train.batch),
      job: options.job ?? 'infobound',
      stateDir,
      lease: options.lease ?? null,
      heartbeatTimeoutMs: positiveInteger('heartbeatTimeoutMs', options.heartbeatTimeoutMs ?? 3000),
      finishTimeoutMs: positiveInteger('finishTimeoutMs', options.finishTimeoutMs ?? 600_000),
      waitTimeoutMs: positiveInteger('waitTimeoutMs', options.waitTimeoutMs ?? 60_000),
      configJson: '',
      tokenDigest: null,
      certificateIdentity: options.certificateIdentity ?? false,
      observer: options.observer ?? {},
    };
    settings.configJson = JSON.stringify({ ...config, train: { ...config.train, steps: settings.steps, batch: settings.batch } });
    const token = options.token ?? null;
    if (token === '') throw new UserError('coordinator: the join token must not be empty (use null for none)');
    if (token !== null) settings.tokenDigest = sha256(token);
    if (settings.job === '') throw new UserError('coordinator: the job name must not be empty');

    try {
      await mkdir(stateDir, { recursive: true });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new UserError(`coordinator state directory ${stateDir}: cannot create: ${e.code ?? e.message}`);
    }
    const saved = await readCoordinatorState(stateDir);
    if (saved !== null && saved.job !== settings.job) {
      throw new UserError(`coordinator state ${stateFilePath(stateDir)}: belongs to job "${saved.job}", not "${settings.job}"`);
    }
    const epochSize = positiveInteger('epochSize', options.epochSize);
    if (saved !== null && saved.epoch_size !== epochSize) {
      throw new UserError(
        `coordinator state ${stateFilePath(stateDir)}: the job's data had ${saved.epoch_size} examples per epoch, the data now has ${epochSize}: the data changed, so the job cannot resume (use another --run-dir)`,
      );
    }
    // A restart resumes from the last checkpoint, the only state the workers can restore; the
    // steps committed after it are trained again.
    const resumeStep = saved?.checkpoint_step ?? 0;
    const resumeCursor = saved?.checkpoint_cursor ?? 0;
    const ledger = new StepLedger(settings.steps, settings.batch, {
      committedStep: resumeStep,
      cursor: resumeCursor,
      checkpointStep: resumeStep,
      checkpointCursor: resumeCursor,
    });
    const roster = new Roster(saved?.generation ?? 0);

    const server = new grpc.Server({ 'grpc.max_receive_message_length': hardReceiveLimit(MAX_RECEIVE_MESSAGE_BYTES) });
    const coordinator = new CoordinatorServer(
      server,
      settings,
      roster,
      ledger,
      epochSize,
      new JoinRateLimiter(
        positiveInteger('joinBurst', options.joinBurst ?? Math.max(64, 2 * settings.workers)),
        positiveNumber('joinsPerSecond', options.joinsPerSecond ?? 8),
      ),
      saved?.run_id ?? randomUUID(),
      saved?.bank_key !== undefined ? Buffer.from(saved.bank_key, 'base64url') : randomBytes(32),
    );
    // Services before binding: grpc-js serves as soon as the port is bound.
    const handlers: CoordinatorHandlers = {
      Join: coordinator.unary((req: JoinRequest__Output, signal, call) => coordinator.join(req, signal, call.getPeer())),
      Heartbeat: (call) => coordinator.heartbeat(call),
      NextStep: coordinator.unary((req: StepRequest__Output, signal) => coordinator.nextStep(req, signal)),
      ReportStep: coordinator.unary((req: StepReport__Output, signal) => coordinator.reportStep(req, signal)),
      Leave: coordinator.unary((req: LeaveRequest__Output) => coordinator.leave(req)),
    };
    server.addService(sizeLimitedService(CoordinatorService.service, MAX_RECEIVE_MESSAGE_BYTES), handlers);
    coordinator.health.addToServer(server);
    const host = options.host ?? '127.0.0.1';
    const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${hostPart}:${options.port ?? 0}`, options.credentials ?? grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) {
          server.forceShutdown();
          reject(new UserError(`coordinator: cannot listen on ${hostPart}:${options.port ?? 0}: ${firstLine(err.message)}`));
        } else resolve(bound);
      });
    });
    coordinator.boundAddress = `${hostPart}:${port}`;
    // Detection latency is the timeout plus at most a quarter of it.
    const sweepEvery = Math.min(1000, Math.max(10, Math.floor(settings.heartbeatTimeoutMs / 4)));
    coordinator.sweepTimer = setInterval(() => {
      coordinator.sweep();
      coordinator.joinLimiter.forgetIdle(performance.now());
    }, sweepEvery);
    return coordinator;
  }

  /** host:port the server listens on (with the port picked when the options said 0). */
  get address(): string {
    return this.boundAddress;
  }

  /** The current generation (before the first one of this coordinator forms: 0, or the resumed job's last). */
  get generation(): number {
    return this.roster.generation;
  }

  /** The last committed step. */
  get committedStep(): number {
    return this.ledger.committedStep;
  }

  /** Stream position where the next step starts. */
  get cursor(): number {
    return this.ledger.committed.cursor;
  }

  /**
   * Stops gracefully: health turns NOT_SERVING, waiting calls fail with UNAVAILABLE, heartbeat streams
   * end, the last state-file write completes, and the server shuts down (connections still open after
   * a short grace period are cut). Idempotent.
   */
  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    for (const service of HEALTH_SERVICES) this.health.setStatus(service, 'NOT_SERVING');
    clearInterval(this.sweepTimer);
    this.waiters.notify();
    for (const call of this.openStreams) call.end();
    this.openStreams.clear();
    this.streams.clear();
    // Commits between checkpoints are written lazily: leave an up-to-date state file behind.
    if (this.roster.generation > 0) void this.persist();
    await this.writes;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, SHUTDOWN_GRACE_MS);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  // ---- RPC handlers --------------------------------------------------------------------------------

  /**
   * Join: rate-limited per calling host; checks the token and the request, then waits (deadline `waitTimeoutMs`) until the worker is
   * a member of a generation: the first one once `workers` have joined, later ones at the next step
   * boundary. A live member joining again restarted: it is removed and joins anew.
   */
  private async join(req: JoinRequest__Output, signal: AbortSignal, peer: string): Promise<Membership> {
    this.checkOpen();
    // Before the token: a flood of guesses is slowed down too.
    if (!this.joinLimiter.take(peerHost(peer), performance.now())) {
      throw refusal('join_rate', `too many Joins from ${peerHost(peer)}: try again shortly`);
    }
    const { tokenDigest } = this.settings;
    if (tokenDigest !== null && !timingSafeEqual(tokenDigest, sha256(req.token))) throw refusal('wrong_token', 'wrong join token');
    const id = req.worker_id;
    if (id === '') throw refusal('invalid_join', 'Join needs a worker_id');
    if (req.version === '') throw refusal('invalid_join', `worker "${id}": Join needs a version`);
    if (req.epoch_size <= 0) throw refusal('invalid_join', `worker "${id}": epoch_size must be at least 1, got ${req.epoch_size}`);
    if (req.epoch_size !== this.epochSize) {
      throw refusal(
        'epoch_size_mismatch',
        `worker "${id}" has epoch_size ${req.epoch_size}, but the job's data has ${this.epochSize}: every member must read the coordinator's data`,
      );
    }

    // The member's credential for every later call: only this Join's caller learns it.
    const session = randomBytes(32).toString('base64url');
    const entry: WorkerEntry = {
      workerId: id,
      peerAddress: req.peer_address,
      sessionDigest: sha256(session),
      lastHeard: performance.now(),
    };
    this.roster.remove(id, 'rejoined');
    this.roster.addPending(entry);
    this.reconcile();
    // A superseded Join of the same worker id sees that it no longer waits.
    this.waiters.notify();
    const { waitTimeoutMs, workers } = this.settings;
    try {
      return await this.waiters.wait(
        () => {
          this.checkOpen();
          if (this.roster.rankOf(entry) >= 0) return { ...this.membershipOf(entry), session };
          if (!this.roster.pending.includes(entry)) {
            throw new RpcFailure(grpc.status.ABORTED, `worker "${id}": superseded by a newer Join of the same worker, or left`);
          }
          return undefined;
        },
        {
          timeoutMs: waitTimeoutMs,
          signal,
          onTimeout: () =>
            new RpcFailure(
              grpc.status.DEADLINE_EXCEEDED,
              this.roster.members.length === 0
                ? `no generation formed within ${waitTimeoutMs} ms: ${this.roster.pending.length} of ${workers} workers have joined`
                : `worker "${id}" was not admitted within ${waitTimeoutMs} ms: step ${this.ledger.committedStep + 1} has not committed`,
            ),
        },
      );
    } finally {
      this.roster.withdraw(entry);
    }
  }

  /**
   * Heartbeat: every ping proves the worker alive and is answered with its current membership
   * (`unchanged` when the ping already carried the current generation); new generations are pushed as
   * they form. A ping from a non-member ends the stream with NOT_FOUND: it must Join.
   */
  private heartbeat(call: HeartbeatCall): void {
    this.openStreams.add(call);
    let owner: WorkerEntry | undefined;
    const detach = (): void => {
      this.openStreams.delete(call);
      if (owner !== undefined && this.streams.get(owner) === call) this.streams.delete(owner);
    };
    call.on('data', (ping: HeartbeatPing__Output) => {
      if (this.closing || !this.openStreams.has(call)) return;
      const entry = this.roster.member(ping.worker_id);
      let failure: RpcFailure | null;
      try {
        refuseOversized(ping);
        this.checkIdentity(call, ping.worker_id);
        failure =
          entry === undefined
            ? refusal('unknown_worker', `worker "${ping.worker_id}" is not a member of generation ${this.roster.generation}: Join first`)
            : sessionRefusal(entry, ping.session);
      } catch (err) {
        failure = err as RpcFailure;
      }
      if (failure !== null) {
        // Refused before it touches the member: a forged ping neither keeps it alive nor takes its stream.
        this.count(failure);
        detach();
        call.emit('error', { code: failure.code, details: failure.message });
        return;
      }
      entry!.lastHeard = performance.now();
      if (owner !== entry) {
        const previous = this.streams.get(entry!);
        // A worker keeps one stream: a reconnect replaces the old one, which is ended.
        if (previous !== undefined && previous !== call) {
          this.openStreams.delete(previous);
          previous.end();
        }
        this.streams.set(entry!, call);
        owner = entry;
      }
      call.write(ping.generation === this.roster.generation ? { unchanged: true } : { unchanged: false, membership: this.membershipOf(entry!) });
    });
    call.on('end', () => {
      detach();
      call.end();
    });
    call.on('cancelled', detach);
  }

  /**
   * NextStep: the member's assignment for the next step. Waits (deadline `waitTimeoutMs`) while the
   * member's report of the next step is in but the step has not committed, so a worker cannot run
   * ahead; fails with FAILED_PRECONDITION when the generation changes meanwhile. Once the job's last
   * step has committed the answer is `done`, with no splits and `step` = that last step.
   */
  private nextStep(req: StepRequest__Output, signal: AbortSignal): Promise<Assignment> {
    this.checkOpen();
    // Once the job is done, members leave one by one and generations change under the others: a
    // member of any generation still gets `done` rather than a stale-generation refusal.
    const known = this.roster.member(req.worker_id);
    if (this.ledger.done && known !== undefined && sessionRefusal(known, req.session) === null) {
      return Promise.resolve({ generation: this.roster.generation, step: this.ledger.committedStep, splits: [], lr_scale: 1, done: true });
    }
    const entry = this.requireMember(req.worker_id, req.generation, req.session);
    const { waitTimeoutMs } = this.settings;
    return this.waiters.wait(
      () => {
        this.checkOpen();
        const generation = this.roster.generation;
        const rank = this.roster.rankOf(entry);
        if (this.ledger.done && rank >= 0) return { generation, step: this.ledger.committedStep, splits: [], lr_scale: 1, done: true };
        if (generation !== req.generation || rank < 0) {
          throw new RpcFailure(grpc.status.FAILED_PRECONDITION, `generation ${req.generation} ended while waiting: the current generation is ${generation}`);
        }
        // Undefined while this member's report of the next step is in but the step has not committed.
        return this.nextAssignment(entry.workerId, generation);
      },
      {
        timeoutMs: waitTimeoutMs,
        signal,
        onTimeout: () =>
          new RpcFailure(
            grpc.status.DEADLINE_EXCEEDED,
            `step ${this.ledger.committedStep + 1} did not commit within ${waitTimeoutMs} ms: ${this.missingReports()}`,
          ),
      },
    );
  }

  /**
   * ReportStep: records the report and answers once the step has committed — and, when the commit
   * moves the checkpoint, once the state file holding it is durable (deadline `waitTimeoutMs`) — so a
   * worker knows its step counted before it moves on. ABORTED when the generation changes first (the step is discarded: roll back to the
   * committed step). A retry after a deadline is refused as a replay (ALREADY_EXISTS): the report is
   * in, and NextStep waits for the commit.
   */
  private async reportStep(req: StepReport__Output, signal: AbortSignal): Promise<StepAck> {
    this.checkOpen();
    const entry = this.requireMember(req.worker_id, req.generation, req.session);
    this.ledger.accept(req, this.roster.rankOf(entry));
    if (this.ledger.complete(this.roster.members.map((m) => m.workerId))) this.commit();
    const { waitTimeoutMs } = this.settings;
    await this.waiters.wait(
      () => {
        this.checkOpen();
        if (this.ledger.committedStep >= req.step) return true;
        const generation = this.roster.generation;
        if (generation !== req.generation) {
          throw new RpcFailure(
            grpc.status.ABORTED,
            `step ${req.step} was discarded: generation ${generation} formed before every member of generation ${req.generation} reported it; roll back to step ${this.ledger.committedStep}`,
          );
        }
        return undefined;
      },
      {
        timeoutMs: waitTimeoutMs,
        signal,
        onTimeout: () => new RpcFailure(grpc.status.DEADLINE_EXCEEDED, `step ${req.step} did not commit within ${waitTimeoutMs} ms: ${this.missingReports()}`),
      },
    );
    await this.commitWrite;
    const next = this.nextAssignment(req.worker_id, req.generation);
    return { committed: true, committed_step: this.ledger.committedStep, ...(next !== undefined ? { next } : {}) };
  }

  /**
   * What NextStep would answer `workerId` right now without waiting: its assignment of the next step
   * (or `done`), or undefined when its generation has ended, it is no member, or it already reported
   * the next step.
   */
  private nextAssignment(workerId: string, generation: number): Assignment | undefined {
    const entry = this.roster.member(workerId);
    if (entry === undefined || this.roster.generation !== generation) return undefined;
    const committed = this.ledger.committedStep;
    if (this.ledger.done) return { generation, step: committed, splits: [], lr_scale: 1, done: true };
    if (this.ledger.hasReported(workerId)) return undefined;
    return { generation, step: committed + 1, splits: [this.ledger.assign(this.roster.rankOf(entry))], lr_scale: 1, done: false };
  }

  /**
   * Leave: the member is removed and a new generation forms. The generation is not checked: a worker
   * that leaves has nothing to gain from catching up first. A waiting joiner has no session yet and
   * leaves by cancelling its Join, so a Leave naming one is refused like any other non-member's: a
   * forger that knows its id cannot withdraw it.
   */
  private leave(req: LeaveRequest__Output): LeaveAck {
    this.checkOpen();
    const member = this.roster.member(req.worker_id);
    if (member === undefined) {
      throw refusal('unknown_worker', `worker "${req.worker_id}" is not a member of generation ${this.roster.generation}`);
    }
    const forged = sessionRefusal(member, req.session);
    if (forged !== null) throw forged;
    const event: LeaveEvent = {
      workerId: member.workerId,
      rank: this.roster.rankOf(member),
      generation: this.roster.generation,
      summaryJson: req.summary_json,
    };
    this.roster.remove(member.workerId, 'left');
    this.reconcile();
    this.settings.observer.left?.(event);
    return {};
  }

  // ---- state transitions ---------------------------------------------------------------------------

  /** Commits the next step (every member reported it), then admits waiting joiners at this boundary. */
  private commit(): void {
    const members = this.roster.members;
    const committed = this.ledger.commit(members.map((m) => m.workerId));
    // A restart resumes from the last checkpoint, so only a commit that moves it must be durable
    // before members go on; fsyncing every commit cost several ms a step.
    this.commitWrite = committed.checkpoint ? this.persist() : Promise.resolve();
    this.settings.observer.commit?.({
      step: committed.step,
      generation: this.roster.generation,
      world: members.length,
      epoch: epochOf(committed.cursor, this.epochSize),
      epochSize: this.epochSize,
      ranges: committed.ranges,
      cursor: committed.cursor,
      checkpoint: committed.checkpoint,
      reports: committed.reports,
    });
    if (this.ledger.done) this.settings.observer.done?.();
    this.reconcile();
    this.waiters.notify();
  }

  /**
   * Forms a new generation if the membership changed and may change now. Removals take effect at once
   * (the step in flight is lost anyway), and joiners come with them; otherwise joiners are admitted
   * only at a step boundary (no step in flight), and while there are no members only once `workers`
   * of them wait, as for the first generation.
   */
  private reconcile(): void {
    const { roster } = this;
    const admit = roster.members.length === 0 ? roster.pending.length >= this.settings.workers : roster.removing || !this.ledger.inFlight;
    const change = roster.form(admit);
    if (change === null) return;
    this.ledger.discard();
    const now = performance.now();
    // A joiner's heartbeat can only start once its Join has answered: its clock starts now.
    for (const entry of change.joined) entry.lastHeard = now;
    for (const { entry, cause } of change.removed) {
      const call = this.streams.get(entry);
      if (call === undefined) continue;
      this.streams.delete(entry);
      this.openStreams.delete(call);
      call.emit('error', {
        code: grpc.status.NOT_FOUND,
        details: `worker "${entry.workerId}" was removed (${cause}) in generation ${change.generation}: Join again`,
      });
    }
    for (const member of change.members) this.streams.get(member)?.write({ unchanged: false, membership: this.membershipOf(member) });
    // Recorded so that a restarted coordinator never reuses a generation number.
    void this.persist();
    this.settings.observer.membership?.({
      generation: change.generation,
      members: this.memberList(),
      committedStep: this.ledger.committedStep,
      joined: change.joined.map((e) => e.workerId),
      removed: change.removed.map(({ entry, cause }) => ({ workerId: entry.workerId, cause })),
    });
    this.waiters.notify();
  }

  /** Removes the members not heard from for `heartbeatTimeoutMs`. */
  private sweep(): void {
    if (this.closing) return;
    // Once the last step has committed, members are finishing: rank 0 evaluates, whose long
    // stretches of compute can hold its heartbeats back, and its figures are the job's summary.
    const timeout = this.ledger.done ? this.settings.finishTimeoutMs : this.settings.heartbeatTimeoutMs;
    const oldest = performance.now() - timeout;
    const late = this.roster.members.filter((m) => m.lastHeard < oldest);
    if (late.length === 0) return;
    for (const member of late) this.roster.remove(member.workerId, 'heartbeat_timeout');
    this.reconcile();
  }

  /**
   * Queues a write of the state as it is when the write runs (writes are serialized, so the file never
   * goes back in time). The returned promise rejects when that write fails; the failure is also
   * reported to the observer, and the chain goes on.
   */
  private persist(): Promise<void> {
    const write = this.writes.then(async () => {
      // A coordinator that lost its run directory to another writes nothing more there.
      await this.settings.lease?.check();
      const position = this.ledger.committed;
      return writeCoordinatorState(this.settings.stateDir, {
        generation: this.roster.generation,
        committed_step: position.committedStep,
        cursor: position.cursor,
        epoch_size: this.epochSize,
        checkpoint_step: position.checkpointStep,
        checkpoint_cursor: position.checkpointCursor,
        job: this.settings.job,
        run_id: this.runId,
        bank_key: this.bankKey.toString('base64url'),
      });
    });
    this.writes = write.catch((err: Error) => this.settings.observer.error?.(err));
    return write;
  }

  // ---- helpers -------------------------------------------------------------------------------------

  /** Adapts an async handler to grpc-js: failures become statuses, refusals are counted. */
  private unary<Req extends { worker_id: string }, Res>(
    handler: (request: Req, signal: AbortSignal, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
  ): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const abort = new AbortController();
      // The client gave up (cancelled, or its own deadline passed): stop waiting for it.
      call.on('cancelled', () => abort.abort(new RpcFailure(grpc.status.CANCELLED, 'cancelled by the client')));
      new Promise<Res>((resolve) => {
        refuseOversized(call.request);
        this.checkIdentity(call, call.request.worker_id);
        resolve(handler(call.request, abort.signal, call));
      }).then(
        (response) => callback(null, response),
        (err: unknown) => callback(this.toStatus(err)),
      );
    };
  }

  /** The status a handler's failure becomes. */
  private toStatus(err: unknown): Partial<grpc.StatusObject> {
    if (err instanceof RpcFailure) {
      this.count(err);
      return { code: err.code, details: err.message };
    }
    const error = err instanceof Error ? err : new Error(String(err));
    // A state-file failure was reported when the write failed; anything else is a bug worth a report.
    if (!(error instanceof UserError)) this.settings.observer.error?.(error);
    return { code: grpc.status.INTERNAL, details: firstLine(error.message) };
  }

  private count(failure: RpcFailure): void {
    if (failure.reason === null) return;
    this.refused[failure.reason] += 1;
    this.settings.observer.refused?.(failure.reason, failure.message);
  }

  /** Under {@link CoordinatorOptions.certificateIdentity}: refuses a worker id that the caller's certificate does not name. */
  private checkIdentity(call: { getAuthContext(): AuthContext }, workerId: string): void {
    if (!this.settings.certificateIdentity) return;
    const names = certificateNames(call.getAuthContext().sslPeerCertificate);
    if (!names.includes(workerId)) {
      throw refusal(
        'certificate_mismatch',
        `worker id "${workerId}" is not a name of the caller's certificate (${names.length === 0 ? 'none' : names.join(', ')}): each worker needs a certificate for its own id, or the job sets tls.worker_identity: ca`,
      );
    }
  }

  /** The member sending a request of `generation`, now heard from; refuses unknown workers and stale generations. */
  private requireMember(workerId: string, generation: number, session: string): WorkerEntry {
    const entry = this.roster.member(workerId);
    if (entry === undefined) {
      throw refusal('unknown_worker', `worker "${workerId}" is not a member of generation ${this.roster.generation}: Join first`);
    }
    const forged = sessionRefusal(entry, session);
    if (forged !== null) throw forged;
    entry.lastHeard = performance.now();
    if (generation !== this.roster.generation) {
      throw refusal('stale_generation', `generation ${generation} is stale: the current generation is ${this.roster.generation}`);
    }
    return entry;
  }

  private checkOpen(): void {
    if (this.closing) throw new RpcFailure(grpc.status.UNAVAILABLE, 'the coordinator is shutting down');
  }

  /** What a member is told: its generation, rank, the ring and where the job stands. */
  private membershipOf(entry: WorkerEntry): Membership {
    const members = this.memberList();
    return {
      generation: this.roster.generation,
      rank: this.roster.rankOf(entry),
      world: members.length,
      members,
      committed_step: this.ledger.committedStep,
      job: this.settings.job,
      run_id: this.runId,
      config_json: this.settings.configJson,
      // Rank 0 is the longest-standing member (members keep their order, joiners are appended), so it
      // holds the committed state whenever any member does.
      state_source_rank: 0,
      peer_credential: this.peerCredential,
      bank_key: this.bankKey,
    };
  }

  private memberList(): Member__Output[] {
    return this.roster.members.map((m, rank) => ({ worker_id: m.workerId, peer_address: m.peerAddress, rank }));
  }

  /** Which members have not reported the next step, for deadline messages. */
  private missingReports(): string {
    const missing = this.roster.members.filter((m) => !this.ledger.hasReported(m.workerId)).map((m) => `"${m.workerId}"`);
    return missing.length === 0 ? 'no report is missing' : `waiting for the reports of ${missing.join(', ')}`;
  }
}

/** A request too large to parse (see common/size-limited-service.ts) is refused and counted. */
function refuseOversized(request: unknown): void {
  if (request instanceof OversizedRequest) throw refusal('oversized', request.message);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new UserError(`coordinator: ${name} must be a positive integer, got ${value}`);
  return value;
}

function positiveNumber(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new UserError(`coordinator: ${name} must be a positive number, got ${value}`);
  return value;
}

function firstLine(text: string): string {
  return text.split('\n')[0]!;
}

/** The refusal of a call whose session credential is not the one the member's Join issued, or null. */
function sessionRefusal(entry: WorkerEntry, session: string): RpcFailure | null {
  if (session !== '' && timingSafeEqual(entry.sessionDigest, sha256(session))) return null;
  return refusal('bad_session', `worker "${entry.workerId}": ${session === '' ? 'no' : 'not the'} session credential its Join issued`);
}
