import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { InfoboundMetrics } from './metrics.js';
import { UserError } from './user-error.js';

/** A running `/metrics` endpoint. */
export interface MetricsServer {
  /** host:port it listens on. */
  address: string;
  close(): Promise<void>;
}

/**
 * Serves `metrics` at GET /metrics on host:port (port 0: any free port), for Prometheus to scrape;
 * anything else is 404. A port that cannot be bound is a one-line {@link UserError}.
 */
export function serveMetrics(metrics: InfoboundMetrics, host: string, port: number): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: Infobound serves GET /metrics\n');
      return;
    }
    metrics.text().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new UserError(`--metrics-port ${port}: cannot listen on ${host}:${port}: ${err.code ?? err.message}`)),
    );
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo;
      resolve({
        address: `${a.address}:${a.port}`,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}
