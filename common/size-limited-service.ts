import type * as grpc from '@grpc/grpc-js';

/**
 * What a handler of a {@link sizeLimitedService} receives instead of a request over the limit: the
 * bytes are not parsed, and the handler refuses the call and counts it (gRPC's own limit would
 * refuse it below the handlers, where nothing can count it).
 */
export class OversizedRequest {
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {}

  /** The refusal's one line. */
  get message(): string {
    return `a request of ${this.bytes} bytes, over the limit of ${this.limit}`;
  }
}

/**
 * gRPC's receive limit for a server whose services are limited to `limit` bytes: a message up to this
 * is read and reaches the handler as an {@link OversizedRequest}; a larger one is refused by gRPC
 * before it is read (its declared length is over), uncounted.
 */
export function hardReceiveLimit(limit: number): number {
  return 4 * limit;
}

/** `service` with each request of more than `limit` bytes handed to its handler as an {@link OversizedRequest}. */
export function sizeLimitedService(service: grpc.ServiceDefinition, limit: number): grpc.ServiceDefinition {
  return Object.fromEntries(
    Object.entries(service).map(([name, method]) => [
      name,
      {
        ...method,
        requestDeserialize: (bytes: Buffer) => (bytes.byteLength > limit ? new OversizedRequest(bytes.byteLength, limit) : method.requestDeserialize(bytes)),
      },
    ]),
  );
}
