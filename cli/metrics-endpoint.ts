import { InfoboundMetrics } from '../common/metrics.js';
import { serveMetrics } from '../common/metrics-server.js';
import { portNumber } from './parse-flags.js';

/** A process's metrics and the endpoint serving them (absent without --metrics-port). */
export interface MetricsEndpoint {
  metrics?: InfoboundMetrics;
  close(): Promise<void>;
}

/**
 * `--metrics-port P`: the process's Prometheus metrics at http://HOST:P/metrics, HOST being the
 * address its gRPC server binds (so a pod's metrics are reachable where its service is). No flag: none.
 */
export async function startMetricsEndpoint(role: string, port: string | undefined, host: string, info?: (m: string) => void): Promise<MetricsEndpoint> {
  if (port === undefined) return { close: async () => {} };
  const metrics = new InfoboundMetrics(role);
  const server = await serveMetrics(metrics, host, portNumber('--metrics-port', port));
  info?.(`metrics at http://${server.address}/metrics`);
  return { metrics, close: () => server.close() };
}
