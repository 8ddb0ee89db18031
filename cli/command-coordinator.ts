import { loadConfig, resolveRunDir } from '../common/config/mod.js';
import { UserError } from '../common/user-error.js';
import { runCoordinator } from '../coordinator/coordinator-job.js';
import { jobEpochOf } from '../worker/train/load-task.js';
import { withPreparedData } from '../worker/dataset/prepare-for-run.js';
import { formatSummary, printStepLine } from './run-output.js';
import { configFlagOptions, configFlagUsage, parseFlags, portNumber, positiveInt, usageLine } from './parse-flags.js';
import { startMetricsEndpoint } from './metrics-endpoint.js';

/** The config fields `coordinator` takes as flags. */
const FIELD_FLAGS = ['data', 'run-dir', 'nats', 'eval-queries', 'sites-sample'] as const;

export const COORDINATOR_USAGE = `${usageLine('coordinator', [
  '[--config FILE]',
  ...configFlagUsage(FIELD_FLAGS),
  '[--port P]',
  '[--workers N]',
  '[--host H]',
  '[--token TOKEN]',
  '[--require-token]',
  '[--heartbeat-timeout MS]',
  '[--metrics-port P]',
  '[--json]',
])}

Serves a job's membership, data plan and step commits to N workers (infobound worker). With --json,
stdout carries one JSON line per worker per logged step and the summary (with generation and restarts).
The run directory gets run.jsonl, commits.jsonl (every committed step's stream ranges) and the
coordinator's state file; a coordinator started again on it resumes from the last checkpoint.
The join token may also come from INFOBOUND_TOKEN; with --require-token the coordinator refuses to
start without one (what a deployment sets, so that a missing secret cannot open the job to anyone). --nats URL (config nats.url) tells the workers to
carry the bank over NATS JetStream; every worker must then be given it too. --metrics-port P serves
Prometheus metrics at http://HOST:P/metrics.`;

/** `infobound coordinator`. */
export async function coordinatorCommand(argv: string[]): Promise<number> {
  const values = parseFlags('coordinator', argv, {
    config: { type: 'string' },
    ...configFlagOptions(FIELD_FLAGS),
    port: { type: 'string' },
    host: { type: 'string' },
    workers: { type: 'string' },
    token: { type: 'string' },
    'require-token': { type: 'boolean' },
    'heartbeat-timeout': { type: 'string' },
    'metrics-port': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(COORDINATOR_USAGE + '\n');
    return 0;
  }
  // loadConfig takes the config flags among the values and leaves the others.
  const loaded = loadConfig(values.config, values);
  // Named once: a default run directory is a new timestamped one each time it is resolved.
  const config = { ...loaded, run_dir: resolveRunDir(loaded) };
  const workers = positiveInt('--workers', values.workers ?? '1');
  const port = values.port === undefined ? 0 : portNumber('--port', values.port);
  const json = values.json === true;
  const token = values.token ?? process.env.INFOBOUND_TOKEN ?? null;
  if (values['require-token'] === true && (token === null || token === '')) {
    throw new UserError('coordinator: --require-token, but no join token: set INFOBOUND_TOKEN (in Kubernetes, the Secret infobound-secrets) or --token');
  }
  const say = (m: string) => process.stderr.write(`infobound coordinator: ${m}\n`);
  const endpoint = await startMetricsEndpoint('coordinator', values['metrics-port'], values.host ?? '127.0.0.1', say);
  const run = await runCoordinator(config, {
    workers,
    // The coordinator's own count of its data: the epoch every member must agree with. A raw click log
    // is prepared into the run directory first (under the run directory's lease), as workers do.
    epoch: async () => jobEpochOf(await withPreparedData(config, config.run_dir, say, say)),
    ...(endpoint.metrics !== undefined ? { metrics: endpoint.metrics } : {}),
    port,
    ...(values.host !== undefined ? { host: values.host } : {}),
    token,
    ...(values['heartbeat-timeout'] !== undefined ? { heartbeatTimeoutMs: positiveInt('--heartbeat-timeout', values['heartbeat-timeout']) } : {}),
    step: (line) => printStepLine(line, json),
    info: (m) => process.stderr.write(`infobound coordinator: ${m}\n`),
  });
  // SIGTERM (the pod moved or deleted): close cleanly, the state file written, so that a coordinator
  // started again on the run directory resumes the job and the workers reconnect to it.
  const stopped = new Promise<null>((resolve) => process.once('SIGTERM', () => resolve(null)));
  try {
    const summary = await Promise.race([run.summary, stopped]);
    if (summary === null) say('SIGTERM: stopped; start the coordinator again on the same run directory to resume the job');
    else process.stdout.write(json ? JSON.stringify(summary) + '\n' : formatSummary(summary));
  } finally {
    await run.close();
    await endpoint.close();
  }
  return 0;
}
