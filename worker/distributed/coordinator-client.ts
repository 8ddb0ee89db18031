import * as grpc from '@grpc/grpc-js';
import { CoordinatorService } from '../../common/proto.js';
import { UserError } from '../../common/user-error.js';
import type { Assignment__Output } from '../../proto/generated/infobound/v1/Assignment.js';
import type { CoordinatorClient as GrpcCoordinatorClient } from '../../proto/generated/infobound/v1/Coordinator.js';
import type { JoinRequest } from '../../proto/generated/infobound/v1/JoinRequest.js';
import type { Membership__Output } from '../../proto/generated/infobound/v1/Membership.js';
import type { MembershipUpdate__Output } from '../../proto/generated/infobound/v1/MembershipUpdate.js';
import type { StepAck__Output } from '../../proto/generated/infobound/v1/StepAck.js';
import type { StepReport } from '../../proto/generated/infobound/v1/StepReport.js';

/** Options of a worker's connection to the coordinator. */
export interface CoordinatorClientOptions {
  /** TLS or insecure channel credentials. */
  credentials?: grpc.ChannelCredentials;
  /** Deadline of each unary call, ms: no wait is unbounded. */
  timeoutMs?: number;
  /** Heartbeat period, ms. */
  heartbeatMs?: number;
}

/** A coordinator call that failed: the gRPC status code and the coordinator's message (one line for the user). */
export class CoordinatorCallError extends UserError {
  constructor(
    readonly method: string,
    readonly code: grpc.status,
    details: string,
  ) {
    super(`coordinator ${method}: ${details}`);
  }
}

/** The coordinator ended the generation the call was made in (ABORTED, FAILED_PRECONDITION): adopt the next one. */
export class GenerationEndedError extends CoordinatorCallError {}

/** The coordinator cannot be reached (UNAVAILABLE: not started yet, restarting, gone): join again. */
export class CoordinatorLostError extends CoordinatorCallError {}

/** The coordinator turned the call away for now (RESOURCE_EXHAUSTED: its Join rate limit): try again after a while. */
export class CoordinatorBusyError extends CoordinatorCallError {}

/** The typed error of a failed call: what the caller does next follows from its class. */
function callError(method: string, code: grpc.status, details: string): CoordinatorCallError {
  if (code === grpc.status.ABORTED || code === grpc.status.FAILED_PRECONDITION) return new GenerationEndedError(method, code, details);
  if (code === grpc.status.UNAVAILABLE) return new CoordinatorLostError(method, code, details);
  if (code === grpc.status.RESOURCE_EXHAUSTED) return new CoordinatorBusyError(method, code, details);
  return new CoordinatorCallError(method, code, details);
}

/** A worker's view of the Coordinator service: promises with deadlines, and a heartbeat loop. */
export class CoordinatorClient {
  private readonly client: GrpcCoordinatorClient;
  private readonly timeoutMs: number;
  private readonly heartbeatMs: number;
  /** The session credential of this client's last Join (empty before it). */
  private session = '';

  constructor(
    readonly address: string,
    opts: CoordinatorClientOptions = {},
  ) {
    this.client = new CoordinatorService(address, opts.credentials ?? grpc.credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    }) as unknown as GrpcCoordinatorClient;
    this.timeoutMs = opts.timeoutMs ?? 120_000;
    this.heartbeatMs = opts.heartbeatMs ?? 500;
  }

  /** Joins; the answer's session credential goes with every later call of this client. */
  async join(req: JoinRequest): Promise<Membership__Output> {
    const membership = await this.unary<Membership__Output>('Join', (cb, o) => this.client.Join(req, o, cb));
    this.session = membership.session;
    return membership;
  }

  nextStep(workerId: string, generation: number): Promise<Assignment__Output> {
    return this.unary('NextStep', (cb, o) => this.client.NextStep({ worker_id: workerId, generation, session: this.session }, o, cb));
  }

  /** Resolves once the step is committed (every member reported it). */
  reportStep(report: StepReport): Promise<StepAck__Output> {
    return this.unary('ReportStep', (cb, o) => this.client.ReportStep({ ...report, session: this.session }, o, cb));
  }

  async leave(workerId: string, generation: number, summaryJson = ''): Promise<void> {
    await this.unary('Leave', (cb, o) => this.client.Leave({ worker_id: workerId, generation, summary_json: summaryJson, session: this.session }, o, cb));
  }

  /**
   * Pings every heartbeatMs with the worker's (generation, step) and hands every pushed membership to
   * `onMembership`; `onError` hears a broken stream. Returns a function that stops it.
   */
  heartbeat(
    workerId: string,
    state: () => { generation: number; step: number },
    onMembership: (m: Membership__Output) => void,
    onError: (err: Error) => void,
  ): () => void {
    // No deadline on the stream (it lives as long as the job); keepalive and the pings bound it.
    const call = this.client.Heartbeat();
    let stopped = false;
    call.on('data', (u: MembershipUpdate__Output) => {
      if (!u.unchanged && u.membership !== null) onMembership(u.membership);
    });
    call.on('error', (err: grpc.ServiceError) => {
      if (!stopped) onError(callError('Heartbeat', err.code, err.details || err.message));
    });
    const ping = () => {
      const s = state();
      call.write({ worker_id: workerId, generation: s.generation, step: s.step, session: this.session });
    };
    ping();
    const timer = setInterval(ping, this.heartbeatMs);
    return () => {
      stopped = true;
      clearInterval(timer);
      call.end();
      call.cancel();
    };
  }

  close(): void {
    this.client.close();
  }

  private unary<T>(method: string, call: (cb: grpc.requestCallback<T>, o: grpc.CallOptions) => void): Promise<T> {
    return new Promise((resolve, reject) => {
      call(
        (err, value) => {
          if (err) reject(callError(method, err.code, err.details || err.message));
          else resolve(value!);
        },
        { deadline: Date.now() + this.timeoutMs },
      );
    });
  }
}
