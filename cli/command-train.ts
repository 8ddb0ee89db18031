import { loadConfig } from '../common/config.js';
import { train } from '../worker/train/trainer.js';
import { runLocalCluster } from './local-cluster.js';
import { backendOverride, parseFlags, portNumber, positiveInt } from './parse-flags.js';
import { UserError } from '../common/user-error.js';
import { ProgressBar } from './progress-bar.js';
import { startMetricsEndpoint } from './metrics-endpoint.js';
import { formatSummary, printStepLine } from './run-output.js';

export const TRAIN_USAGE = `usage: infobound train [--config FILE] [--data FILE] [--kind clicklog|images] [--steps N]
                      [--batch N] [--bank-size K] [--backend wasm|cpu|tensorflow|tensorflow-gpu]
                      [--resume CHECKPOINT] [--run-dir DIR] [--workers N] [--nats URL]
                      [--metrics-port P] [--json]

Trains a MoCo/InfoNCE encoder on a click log (query<TAB>site<TAB>clicks, or JSONL) or an IDX image
directory and reports the InfoNCE, NWJ, DV and JSD bounds next to the ceiling log(K+1).
The YAML config holds every setting (\`infobound config\` prints them); flags override it.
With --json, stdout carries one JSON object per logged step and a summary, and nothing else.
--workers N runs a coordinator here and N worker processes on loopback (the cluster code path).
--nats URL carries the bank's keys over NATS JetStream (config nats.url; credentials in nats.* or
NATS_USER / NATS_PASSWORD / NATS_TOKEN); without it the bank is in-process or travels the worker ring.
--metrics-port P serves Prometheus metrics at http://127.0.0.1:P/metrics (with --workers N: the
coordinator on P, worker i on P+1+i).`;

/** `infobound train`. */
export async function trainCommand(argv: string[]): Promise<number> {
  const values = parseFlags('train', argv, {
    config: { type: 'string' },
    data: { type: 'string' },
    kind: { type: 'string' },
    steps: { type: 'string' },
    batch: { type: 'string' },
    'bank-size': { type: 'string' },
    backend: { type: 'string' },
    resume: { type: 'string' },
    'run-dir': { type: 'string' },
    workers: { type: 'string' },
    nats: { type: 'string' },
    'metrics-port': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(TRAIN_USAGE + '\n');
    return 0;
  }
  const config = loadConfig(values.config, {
    ...(values.data !== undefined ? { data: values.data } : {}),
    ...(values.kind !== undefined ? { kind: values.kind } : {}),
    ...(values.steps !== undefined ? { steps: values.steps } : {}),
    ...(values.batch !== undefined ? { batch: values.batch } : {}),
    ...(values['bank-size'] !== undefined ? { bankSize: values['bank-size'] } : {}),
    ...backendOverride(values.backend),
    ...(values.nats !== undefined ? { nats: values.nats } : {}),
  });
  if (values.resume !== undefined) config.train.resume = values.resume;
  if (values['run-dir'] !== undefined) config.run_dir = values['run-dir'];
  const json = values.json === true;
  if (values.workers !== undefined) {
    const workers = positiveInt('--workers', values.workers);
    const metricsPort = values['metrics-port'] !== undefined ? portNumber('--metrics-port', values['metrics-port']) : undefined;
    // The coordinator takes P and worker i P+1+i: all of them must be ports, and fixed ones.
    if (metricsPort !== undefined && (metricsPort === 0 || metricsPort + workers > 65535)) {
      throw new UserError(`--metrics-port with --workers ${workers} needs ports P to P+${workers} in [1, 65535], got P = ${metricsPort}`);
    }
    const summary = await runLocalCluster(config, {
      workers,
      ...(metricsPort !== undefined ? { metricsPort } : {}),
      step: (line) => printStepLine(line, json),
      info: (m) => process.stderr.write(`infobound: ${m}\n`),
    });
    process.stdout.write(json ? JSON.stringify(summary) + '\n' : formatSummary(summary));
    return 0;
  }
  const bar = !json && process.stderr.isTTY ? new ProgressBar(process.stderr) : null;
  const endpoint = await startMetricsEndpoint('train', values['metrics-port'], '127.0.0.1', (m) => process.stderr.write(`infobound: ${m}\n`));
  const summary = await train(config, {
    ...(endpoint.metrics !== undefined ? { metrics: endpoint.metrics } : {}),
    info: (m) => process.stderr.write(`infobound: ${m}\n`),
    warn: (m) => process.stderr.write(m.endsWith('\n') ? m : m + '\n'),
    progress: bar ? (p) => bar.update(p) : undefined,
    // With a progress bar on the terminal, the bar shows the logged steps.
    step: (line) => {
      if (json || bar === null) printStepLine(line, json);
    },
  });
  bar?.done();
  await endpoint.close();
  if (json) process.stdout.write(JSON.stringify(summary) + '\n');
  else process.stdout.write(formatSummary(summary));
  return 0;
}
