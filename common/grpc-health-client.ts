import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';

/** A grpc.health.v1 client: what Kubernetes' gRPC probes ask, for tests and load tests. */
export interface HealthClient {
  /** The serving status of `service` ('' for the server as a whole); rejects with the call's error. */
  check(service: string, deadlineMs?: number): Promise<string>;
  /** Status updates of `service` as they happen, until the client closes. */
  watch(service: string): grpc.ClientReadableStream<{ status: string }>;
  close(): void;
}

/** A health client of the server at `address` (plaintext). */
export function healthClient(address: string): HealthClient {
  const Health = grpc.makeGenericClientConstructor(healthService as unknown as grpc.ServiceDefinition, 'Health');
  const client = new Health(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    check(req: { service: string }, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
    watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }>;
  };
  return {
    check: (service, deadlineMs = 5000) =>
      new Promise((resolve, reject) => client.check({ service }, { deadline: Date.now() + deadlineMs }, (err, r) => (err ? reject(err) : resolve(r!.status)))),
    watch: (service) => client.watch({ service }),
    close: () => client.close(),
  };
}
