/**
 * `npm run bench:prepare [-- --json] [--queries N] [--sites M] [--clicks C]`
 *
 * `infobound prepare`'s streaming pass over a generated click log, rows per second, beside the
 * baseline measured in the same run on the same file: today's training reader (`readClickLog`, which
 * parses and interns every row into memory). Each runs in its own process so that its peak RSS is
 * its own. The issue's goal: prepare at ≥ 1 M rows/s on this 2-core machine.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { readClickLog } from '../worker/data/clicklog-reader.js';
import { prepareDataset } from '../worker/dataset/prepare-dataset.js';

/** What one measured pass reports (the `--json` field names are an interface). */
interface PassResult {
  pass: 'read_clicklog' | 'prepare';
  rows: number;
  seconds: number;
  rows_per_s: number;
  peak_rss_bytes: number;
}

const GOAL_ROWS_PER_S = 1e6;

const { values } = parseArgs({
  options: {
    json: { type: 'boolean' },
    queries: { type: 'string', default: '400000' },
    sites: { type: 'string', default: '40000' },
    clicks: { type: 'string', default: '8000000' },
    one: { type: 'string' },
    data: { type: 'string' },
    out: { type: 'string' },
  },
});

if (values.one !== undefined) {
  process.stdout.write(`${JSON.stringify(await measure(values.one as PassResult['pass'], values.data!, values.out!))}\n`);
} else {
  await main();
}

async function measure(pass: PassResult['pass'], data: string, out: string): Promise<PassResult> {
  const t0 = performance.now();
  let rows: number;
  if (pass === 'read_clicklog') rows = (await readClickLog(data, { warn: () => {} })).rowQuery.length;
  else {
    const { manifest } = await prepareDataset([data], out, { read: { warn: () => {} }, holdout: 0.1 });
    rows = manifest.rows.train + manifest.rows.held_out;
  }
  const seconds = (performance.now() - t0) / 1000;
  return { pass, rows, seconds, rows_per_s: rows / seconds, peak_rss_bytes: process.resourceUsage().maxRSS * 1024 };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'infobound-bench-prepare-'));
  try {
    const data = join(dir, 'clicks.tsv');
    const meta = await writeSyntheticClickLog(data, { queries: Number(values.queries), sites: Number(values.sites), clicks: Number(values.clicks), seed: 9 });
    const results: PassResult[] = [];
    for (const pass of ['read_clicklog', 'prepare'] as const) {
      const text = execFileSync(process.execPath, [process.argv[1]!, '--one', pass, '--data', data, '--out', join(dir, `ds-${pass}`)], { encoding: 'utf8' });
      results.push(JSON.parse(text) as PassResult);
    }
    const [baseline, prepare] = results as [PassResult, PassResult];
    const summary = {
      file_bytes: statSync(data).size,
      rows: meta.rows,
      prepare_rows_per_s: prepare.rows_per_s,
      baseline_rows_per_s: baseline.rows_per_s,
      speedup: prepare.rows_per_s / baseline.rows_per_s,
      goal_rows_per_s: GOAL_ROWS_PER_S,
      goal_met: prepare.rows_per_s >= GOAL_ROWS_PER_S,
      cpus: cpus().length,
    };
    if (values.json) {
      for (const r of results) console.log(JSON.stringify(r));
      console.log(JSON.stringify(summary));
      return;
    }
    console.log(`click log: ${meta.rows} rows, ${(summary.file_bytes / 1e6).toFixed(1)} MB, ${cpus().length} cpus`);
    for (const r of results) {
      console.log(
        `${r.pass.padEnd(14)} ${(r.rows_per_s / 1e6).toFixed(3)} M rows/s  (${r.seconds.toFixed(1)} s, peak RSS ${(r.peak_rss_bytes / 2 ** 20).toFixed(0)} MiB)`,
      );
    }
    console.log(
      `prepare vs the training reader (baseline, same run): ${summary.speedup.toFixed(2)}x; goal ${GOAL_ROWS_PER_S / 1e6} M rows/s: ${summary.goal_met ? 'met' : 'not met'}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
