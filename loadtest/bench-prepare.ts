/**
 * `npm run bench:prepare [-- --json] [--queries N] [--sites M] [--clicks C]`
 *
 * `infobound prepare`'s streaming pass over a generated click log, rows per second, beside the
 * baseline measured in the same run on the same file: today's training reader (`readClickLog`, which
 * parses and interns every row into memory). Each runs in its own process so that its peak RSS is
 * its own. The issue's goal: prepare at ≥ 1 M rows/s on this 2-core machine.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { runPass, type PassResult } from './prepare-pass.js';

const GOAL_ROWS_PER_S = 1e6;

const { values } = parseArgs({
  options: {
    json: { type: 'boolean' },
    queries: { type: 'string', default: '400000' },
    sites: { type: 'string', default: '40000' },
    clicks: { type: 'string', default: '8000000' },
  },
});

await main();

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'infobound-bench-prepare-'));
  try {
    const data = join(dir, 'clicks.tsv');
    const meta = await writeSyntheticClickLog(data, { queries: Number(values.queries), sites: Number(values.sites), clicks: Number(values.clicks), seed: 9 });
    const results: PassResult[] = [];
    for (const pass of ['read_clicklog', 'prepare'] as const) results.push(runPass(pass, data, join(dir, `ds-${pass}`)));
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
