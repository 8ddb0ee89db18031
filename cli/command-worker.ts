import { hostname } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../common/config/mod.js';
import { UserError } from '../common/user-error.js';
import { runWorker } from '../worker/distributed/worker-process.js';
import { environmentOverrides, configFlagOptions, configFlagUsage, parseFlags, portNumber, positiveInt, usageLine } from './parse-flags.js';
import { startMetricsEndpoint } from './metrics-endpoint.js';

/** The config fields `worker` takes as flags. */
const FIELD_FLAGS = ['data', 'run-dir', 'nats', 'backend', 'engine', 'device', 'threads'] as const;

export const WORKER_USAGE = `${usageLine('worker', [
  '--coordinator HOST:PORT',
  '[--config FILE]',
  ...configFlagUsage(FIELD_FLAGS),
  '[--worker-id ID]',
  '[--token TOKEN]',
  '[--bind HOST]',
  '[--advertise HOST]',
  '[--connect-timeout SECONDS]',
  '[--metrics-port P]',
  '[--peer-port P]',
  '[--data-port P]',
])}

Joins a job's coordinator and trains the steps it assigns. The config must match the coordinator's
(same file); the join token may also come from INFOBOUND_TOKEN. --bind is the address the Peer server
listens on (default 127.0.0.1; 0.0.0.0 in a pod), --advertise the host other workers dial (the pod IP).
--connect-timeout (default 60) bounds the wait for an unreachable coordinator (not started yet, or
restarting) and for a new generation after a failed step. --metrics-port P serves Prometheus metrics at
http://BIND:P/metrics. --peer-port fixes the worker-to-worker gRPC port, --data-port the port of the data plane
that carries the collectives' payloads (default for both: any free port). The
device may also come from INFOBOUND_DEVICE (the GPU image sets cuda), the tfjs backend from
INFOBOUND_BACKEND. SIGTERM drains the
worker: it finishes the step in flight and leaves the job, which goes on without it.`;

/** `infobound worker`. */
export async function workerCommand(argv: string[]): Promise<number> {
  const values = parseFlags('worker', argv, {
    coordinator: { type: 'string' },
    config: { type: 'string' },
    ...configFlagOptions(FIELD_FLAGS),
    'worker-id': { type: 'string' },
    token: { type: 'string' },
    bind: { type: 'string' },
    advertise: { type: 'string' },
    'connect-timeout': { type: 'string' },
    'metrics-port': { type: 'string' },
    'peer-port': { type: 'string' },
    'data-port': { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(WORKER_USAGE + '\n');
    return 0;
  }
  if (values.coordinator === undefined) throw new UserError('worker: --coordinator HOST:PORT is required');
  // loadConfig takes the config flags among the values and leaves the others.
  const config = loadConfig(values.config, { ...values, ...environmentOverrides(values) });
  const bind = values.bind ?? '127.0.0.1';
  const workerId = values['worker-id'] ?? `${hostname()}-${process.pid}`;
  const say = (m: string) => process.stderr.write(`infobound worker ${workerId}: ${m}\n`);
  const endpoint = await startMetricsEndpoint('worker', values['metrics-port'], bind, say);
  // SIGTERM (a pod deleted or scaled down) drains: the step in flight finishes, then the worker leaves.
  // A second signal kills it as usual.
  const drain = new AbortController();
  const onSignal = (signal: string) => () => {
    say(`${signal}: finishing the step in flight, then leaving the job`);
    drain.abort();
  };
  process.once('SIGTERM', onSignal('SIGTERM'));
  process.once('SIGINT', onSignal('SIGINT'));
  try {
    const runDir = config.run_dir ?? '.';
    await runWorker({
      config,
      prepareInto: runDir,
      ...(endpoint.metrics !== undefined ? { metrics: endpoint.metrics } : {}),
      drain: drain.signal,
      coordinator: values.coordinator,
      workerId,
      token: values.token ?? process.env.INFOBOUND_TOKEN ?? null,
      peerHost: bind,
      ...(values['peer-port'] !== undefined ? { peerPort: portNumber('--peer-port', values['peer-port']) } : {}),
      ...(values['data-port'] !== undefined ? { dataPort: portNumber('--data-port', values['data-port']) } : {}),
      advertiseHost: values.advertise ?? (bind === '0.0.0.0' ? hostname() : bind),
      checkpointPath: join(runDir, 'checkpoint.ibck'),
      ...(values['connect-timeout'] !== undefined ? { recoveryTimeoutMs: 1000 * positiveInt('--connect-timeout', values['connect-timeout']) } : {}),
      info: say,
      warn: (m) => process.stderr.write(m.endsWith('\n') ? m : m + '\n'),
    });
  } finally {
    await endpoint.close();
  }
  return 0;
}
