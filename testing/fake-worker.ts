/**
 * Test-only: a scripted worker that talks to a coordinator over real gRPC (loopback) but trains
 * nothing. Tests drive it one call at a time (join, heartbeat, nextStep, report, leave) so they can
 * interleave workers, stop one's pings, or send malformed requests.
 */
import * as grpc from '@grpc/grpc-js';
import { CoordinatorService } from '../common/proto.js';
import type { Assignment__Output } from '../proto/generated/infobound/v1/Assignment.js';
import type { CoordinatorClient } from '../proto/generated/infobound/v1/Coordinator.js';
import type { HeartbeatPing } from '../proto/generated/infobound/v1/HeartbeatPing.js';
import type { Membership__Output } from '../proto/generated/infobound/v1/Membership.js';
import type { MembershipUpdate__Output } from '../proto/generated/infobound/v1/MembershipUpdate.js';
import type { StepAck__Output } from '../proto/generated/infobound/v1/StepAck.js';

/** Options of a {@link FakeWorker}. */
export interface FakeWorkerOptions {
  /** JoinRequest.worker_id. */
  workerId: string;
  /** JoinRequest.epoch_size. Default 100. */
  epochSize?: number;
  /** JoinRequest.token. Default ''. */
  token?: string;
  /** JoinRequest.version. Default 'test'. */
  version?: string;
  /** Channel credentials (TLS, a client certificate). Default insecure. */
  credentials?: grpc.ChannelCredentials;
  /** Deadline of each call, in ms from its start. Default 5000. */
  callTimeoutMs?: number;
}

/** What {@link FakeWorker.report} sends besides the step. */
export interface ReportOptions {
  /** StepReport.examples. Default the assignment's count (the last assignment's split). */
  examples?: number;
  /** StepReport.generation. Default the worker's current generation. */
  generation?: number;
  /** StepReport.checkpoint_written. Default false. */
  checkpointWritten?: boolean;
  /** StepReport.split_start. Default the assignment's start (the last assignment's split). */
  splitStart?: number;
}

/** A scripted worker for coordinator tests. Call {@link close} when done (tests: in `t.after`). */
export class FakeWorker {
  /** The Coordinator client it uses (tests may send raw requests with it). */
  readonly client: CoordinatorClient;
  /** The last membership it was told (Join's answer, or the heartbeat stream's), or null before Join. */
  membership: Membership__Output | null = null;
  /** Every heartbeat update that was not an acknowledgement of an unchanged membership, in order. */
  readonly pushes: Membership__Output[] = [];
  /** Ping acknowledgements received. */
  acks = 0;
  /** The status that ended the heartbeat stream, once one did. */
  streamError: grpc.ServiceError | null = null;
  /** The last assignment NextStep gave. */
  assignment: Assignment__Output | null = null;
  /** The session credential its calls carry: its Join's (a test may set another, as a forger would). */
  session = '';

  private readonly options: Required<Omit<FakeWorkerOptions, 'credentials'>>;
  private stream: grpc.ClientDuplexStream<HeartbeatPing, MembershipUpdate__Output> | null = null;
  private pinger: NodeJS.Timeout | undefined;

  constructor(address: string, options: FakeWorkerOptions) {
    this.options = { epochSize: 100, token: '', version: 'test', callTimeoutMs: 5000, ...options };
    this.client = new CoordinatorService(address, options.credentials ?? grpc.credentials.createInsecure()) as unknown as CoordinatorClient;
  }

  /** Its worker id. */
  get id(): string {
    return this.options.workerId;
  }

  /** Its current generation (0 before Join). */
  get generation(): number {
    return this.membership?.generation ?? 0;
  }

  /** Its rank in the current generation. */
  get rank(): number {
    return this.membership?.rank ?? -1;
  }

  /** Joins; resolves with the membership once the coordinator admits it. */
  async join(overrides: { epochSize?: number; token?: string } = {}): Promise<Membership__Output> {
    const { workerId, epochSize, token, version } = this.options;
    const request = {
      worker_id: workerId,
      peer_address: `fake-peer-${workerId}:0`,
      token: overrides.token ?? token,
      version,
      epoch_size: overrides.epochSize ?? epochSize,
    };
    const membership = await this.unary<Membership__Output>((opts, cb) => this.client.Join(request, opts, cb));
    this.membership = membership;
    this.session = membership.session;
    return membership;
  }

  /** Opens the heartbeat stream (once) and pings every `everyMs`; updates {@link membership} from the answers. */
  startHeartbeat(everyMs = 100): void {
    if (this.stream === null) {
      const stream = this.client.Heartbeat();
      stream.on('data', (update: MembershipUpdate__Output) => {
        if (update.unchanged) this.acks += 1;
        if (update.unchanged || update.membership === null) return;
        this.pushes.push(update.membership);
        this.membership = update.membership;
      });
      stream.on('error', (err: grpc.ServiceError) => {
        this.streamError = err;
        this.stopHeartbeat();
      });
      // The coordinator ended the stream (it is shutting down): stop pinging into it.
      stream.on('end', () => this.stopHeartbeat());
      this.stream = stream;
    }
    clearInterval(this.pinger);
    const ping = (): void => {
      this.stream?.write({ worker_id: this.id, generation: this.generation, step: this.assignment?.step ?? 0, session: this.session });
    };
    ping();
    this.pinger = setInterval(ping, everyMs);
  }

  /** Stops pinging; the stream stays open, as with a worker that hangs. */
  stopHeartbeat(): void {
    clearInterval(this.pinger);
    this.pinger = undefined;
  }

  /** NextStep for `generation` (default its current one). */
  async nextStep(generation = this.generation): Promise<Assignment__Output> {
    const assignment = await this.unary<Assignment__Output>((opts, cb) =>
      this.client.NextStep({ worker_id: this.id, generation, session: this.session }, opts, cb),
    );
    this.assignment = assignment;
    return assignment;
  }

  /** ReportStep of `step`; resolves once the coordinator has committed it. */
  report(step: number, options: ReportOptions = {}): Promise<StepAck__Output> {
    const request = {
      worker_id: this.id,
      generation: options.generation ?? this.generation,
      step,
      metrics: { loss: 1, logged: false },
      examples: options.examples ?? this.assignment?.splits[0]?.count ?? 0,
      split_start: options.splitStart ?? Number(this.assignment?.splits[0]?.start ?? 0),
      session: this.session,
      checkpoint_written: options.checkpointWritten ?? false,
    };
    return this.unary<StepAck__Output>((opts, cb) => this.client.ReportStep(request, opts, cb));
  }

  /** Leave for its current generation. */
  async leave(): Promise<void> {
    await this.unary((opts, cb) => this.client.Leave({ worker_id: this.id, generation: this.generation, session: this.session }, opts, cb));
  }

  /**
   * Resolves with its membership once `accept` holds for it (checked every 10 ms), or rejects after
   * `timeoutMs`.
   */
  async waitForMembership(accept: (m: Membership__Output) => boolean, timeoutMs = 3000): Promise<Membership__Output> {
    const deadline = Date.now() + timeoutMs;
    while (this.membership === null || !accept(this.membership)) {
      if (Date.now() > deadline) {
        throw new Error(`${this.id}: no matching membership within ${timeoutMs} ms (last: generation ${this.generation})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return this.membership;
  }

  /** Stops pinging, cancels the heartbeat stream and closes the client. */
  close(): void {
    this.stopHeartbeat();
    this.stream?.cancel();
    this.client.close();
  }

  private unary<T>(start: (options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, value?: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      start({ deadline: Date.now() + this.options.callTimeoutMs }, (err, value) => (err ? reject(err) : resolve(value!)));
    });
  }
}
