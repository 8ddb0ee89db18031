/**
 * One measured pass over a click log, in a process of its own so that its peak RSS is its own: the
 * training reader (`readClickLog`, which parses and interns every row in memory), `prepareDataset`,
 * or the load of a worker's task from the raw log as every worker did before prepared datasets
 * (`ClickLogTask.load`: read, intern and featurise the whole log). Run as
 * `node prepare-pass.js PASS DATA OUT` it prints the result as JSON.
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../common/backend.js';
import { defaultConfig } from '../common/config/mod.js';
import { readClickLog } from '../worker/data/clicklog-reader.js';
import { ClickLogTask } from '../worker/train/clicklog-task.js';
import { prepareDataset } from '../worker/dataset/prepare-dataset.js';

/** What one pass reports (the benchmarks' `--json` field names are an interface). */
export interface PassResult {
  pass: 'read_clicklog' | 'prepare' | 'load_raw_task';
  rows: number;
  seconds: number;
  rows_per_s: number;
  /** Input bytes read a second. */
  mb_per_s: number;
  peak_rss_bytes: number;
}

const SELF = fileURLToPath(import.meta.url);

/** Runs `pass` over `data` (a prepare writes `out`) in a child process and returns what it measured. */
export function runPass(pass: PassResult['pass'], data: string, out: string): PassResult {
  return JSON.parse(execFileSync(process.execPath, [SELF, pass, data, out], { encoding: 'utf8', maxBuffer: 1 << 20 })) as PassResult;
}

async function measure(pass: PassResult['pass'], data: string, out: string): Promise<PassResult> {
  const t0 = performance.now();
  let rows: number;
  if (pass === 'read_clicklog') rows = (await readClickLog(data, { warn: () => {} })).rowQuery.length;
  else if (pass === 'load_raw_task') {
    const config = defaultConfig();
    await initBackend(config.backend);
    Object.assign(config, { data });
    rows = (await ClickLogTask.load(config, () => {})).data.log.rowQuery.length;
  } else {
    const { manifest } = await prepareDataset([data], out, { read: { warn: () => {} }, holdout: 0.1 });
    rows = manifest.rows.train + manifest.rows.held_out;
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    pass,
    rows,
    seconds,
    rows_per_s: rows / seconds,
    mb_per_s: statSync(data).size / 1e6 / seconds,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
  };
}

if (process.argv[1] === SELF) {
  const [pass, data, out] = process.argv.slice(2) as [PassResult['pass'], string, string];
  process.stdout.write(`${JSON.stringify(await measure(pass, data, out))}\n`);
}
