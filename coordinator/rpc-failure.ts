import * as grpc from '@grpc/grpc-js';

/**
 * Why the coordinator refused a request, each with the gRPC status code the caller gets. Refusals are
 * counted by reason ({@link CoordinatorServer.refused}): they are the requests a correct worker of the
 * current generation never sends, so a growing count points at a bug, a stale worker or an intruder.
 */
export const REFUSAL_STATUS = {
  /** Join carried a token other than the job's. */
  wrong_token: grpc.status.UNAUTHENTICATED,
  /** A member's call without the session credential its Join issued (a forger naming its worker id). */
  bad_session: grpc.status.UNAUTHENTICATED,
  /** Joins from one host faster than the coordinator's rate limit: the worker retries with backoff. */
  join_rate: grpc.status.RESOURCE_EXHAUSTED,
  /** Under mutual TLS, a worker id that the caller's certificate does not name (a stolen or guessed id). */
  certificate_mismatch: grpc.status.PERMISSION_DENIED,
  /** A request over the coordinator's message size limit (not parsed). */
  oversized: grpc.status.RESOURCE_EXHAUSTED,
  /** Join without a worker id or version, or with an epoch size of 0. */
  invalid_join: grpc.status.INVALID_ARGUMENT,
  /** Join with an epoch size other than the coordinator's count of its data: the members would read different data streams. */
  epoch_size_mismatch: grpc.status.INVALID_ARGUMENT,
  /** A request from a worker that is not a member of the current generation (never joined, or removed). */
  unknown_worker: grpc.status.NOT_FOUND,
  /** A request carrying a generation other than the current one. */
  stale_generation: grpc.status.FAILED_PRECONDITION,
  /** A step report the coordinator already has, or of a step already committed. */
  replayed_report: grpc.status.ALREADY_EXISTS,
  /** A step report of a step that is not the next one to commit. */
  wrong_step: grpc.status.FAILED_PRECONDITION,
  /** A step report whose example count differs from the assignment's. */
  wrong_example_count: grpc.status.INVALID_ARGUMENT,
  /** A step report of examples other than the ones the member was assigned: the audit trail records assignments. */
  wrong_range: grpc.status.INVALID_ARGUMENT,
} as const;

/** One of the keys of {@link REFUSAL_STATUS}. */
export type RefusalReason = keyof typeof REFUSAL_STATUS;

/** Every refusal reason, in the order of {@link REFUSAL_STATUS}. */
export const REFUSAL_REASONS = Object.keys(REFUSAL_STATUS) as RefusalReason[];

/**
 * An error a coordinator handler answers with instead of a response: its code and message become the
 * call's status. `reason` is set for refusals (bad requests, counted) and null for the failures a correct
 * worker can meet too (a deadline passed, the generation changed under a waiting call, shutdown).
 */
export class RpcFailure extends Error {
  override name = 'RpcFailure';

  constructor(
    /** The gRPC status code of the answer. */
    readonly code: grpc.status,
    message: string,
    /** Why the request was refused, or null when it was not a refusal. */
    readonly reason: RefusalReason | null = null,
  ) {
    super(message);
  }
}

/** A refusal for `reason`, with that reason's status code. */
export function refusal(reason: RefusalReason, message: string): RpcFailure {
  return new RpcFailure(REFUSAL_STATUS[reason], message, reason);
}
