/**
 * `npm run bench:bank-partition [-- --json] [--sizes 65536,262144,1048576] [--workers 1,2,3] [--steps S]`
 *
 * Per-worker memory and ms/step of the replicated bank against the partitioned one (bank.mode), at
 * each bank size K and worker count W: `infobound train --workers W` with the default click-log model
 * on the onnx engine, batch 256 per worker, on a synthetic log of 20,000 queries and 2,000 sites (seed
 * 1). Each run reports its workers' start-up memory lines (the bank part is what partitioning
 * divides) and the largest peak RSS of its worker processes (/proc VmHWM; rank 0's includes the
 * whole bank it gathers for the final checkpoint), and its wall ms per step in the steady window
 * (loadtest/train-throughput.ts). The replicated run at the same K and W is the baseline of the same
 * invocation. A replicated configuration whose W workers would need more than the machine's memory
 * (estimated from the W = 1 run's peak RSS) is skipped and said so, rather than pushing the machine
 * into swap.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { positiveInts } from './bench-flags.js';
import { benchOne, killGroup, type Result } from './train-throughput.js';

const BATCH = 256;
const GIB = 2 ** 30;

/** One configuration's figures (the `--json` field names are an interface). */
interface PartitionRow {
  bank: number;
  mode: 'replicated' | 'partitioned';
  workers: number;
  /** Null when the configuration was skipped or failed (see `skipped`). */
  wall_ms_per_step: number | null;
  compute_ms: number | null;
  allreduce_ms: number | null;
  /** Each worker's bank part from its start-up memory line ("130.0 MiB"). */
  bank_per_worker: string[];
  worker_peak_rss_bytes: number | null;
  skipped?: string;
}

function bankPart(memoryLine: string): string {
  return /bank ([\d.]+ [KMG]?i?B)/.exec(memoryLine)?.[1] ?? '?';
}

function rowOf(bank: number, mode: PartitionRow['mode'], workers: number, r: Result): PartitionRow {
  return {
    bank,
    mode,
    workers,
    wall_ms_per_step: r.wall_ms_per_step,
    compute_ms: r.compute_ms,
    allreduce_ms: r.allreduce_ms,
    bank_per_worker: r.worker_memory.map(bankPart),
    worker_peak_rss_bytes: r.worker_peak_rss_bytes,
  };
}

/** The row of a configuration that has no figures, and why. */
function missingRow(bank: number, mode: PartitionRow['mode'], workers: number, why: string): PartitionRow {
  return { bank, mode, workers, wall_ms_per_step: null, compute_ms: null, allreduce_ms: null, bank_per_worker: [], worker_peak_rss_bytes: null, skipped: why };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      sizes: { type: 'string', default: '65536,262144,1048576' },
      workers: { type: 'string', default: '1,2,3' },
      steps: { type: 'string', default: '8' },
    },
  });
  const sizes = positiveInts('--sizes', values.sizes);
  const worlds = positiveInts('--workers', values.workers);
  const steps = Number(values.steps);
  if (!Number.isInteger(steps) || steps < 4) throw new Error(`--steps: expected an integer of at least 4, got "${values.steps}"`);

  const dir = await mkdtemp(join(tmpdir(), 'infobound-bench-partition-'));
  process.once('exit', () => {
    killGroup();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 20_000, sites: 2_000, seed: 1 });
  // Every other step logged (so the window has bounds steps in it), no evaluation at the end.
  const config = join(dir, 'config.yaml');
  await writeFile(config, `engine: onnx\ntrain: {log_every: 2, batch: ${BATCH}}\neval: {enabled: false}\n`);
  const load0 = loadavg();
  const rows: PartitionRow[] = [];
  for (const bank of sizes) {
    let onePeak = 0;
    for (const workers of worlds) {
      for (const mode of ['replicated', 'partitioned'] as const) {
        // Replicated workers each hold what one does: skip what cannot fit beside the OS.
        const oneFailed = rows.some((r) => r.bank === bank && r.mode === 'replicated' && r.workers === 1 && r.wall_ms_per_step === null);
        if (mode === 'replicated' && workers > 1 && (oneFailed || onePeak * workers > 0.8 * totalmem())) {
          const skipped = oneFailed
            ? 'the 1-worker replicated run failed'
            : `${workers} × ${(onePeak / GIB).toFixed(2)} GiB (the 1-worker peak) exceeds 80% of the machine's ${(totalmem() / GIB).toFixed(1)} GiB`;
          console.error(`bench-bank-partition: K=${bank} ${mode} ×${workers}: skipped, ${skipped}`);
          rows.push(missingRow(bank, mode, workers, skipped));
          continue;
        }
        let r: Result;
        try {
          r = await benchOne('cluster', workers, data, join(dir, `run-${bank}-${mode}-${workers}`), steps, BATCH, [
            '--config',
            config,
            '--bank-size',
            String(bank),
            '--bank-mode',
            mode,
          ]);
        } catch (err) {
          // A run that fails is a figure too (a worker removed for a missed heartbeat, say): its last line says why.
          const failed = `failed: ${((err as Error).message.trim().split('\n').at(-1) ?? '').replace(/^infobound: /, '')}`;
          console.error(`bench-bank-partition: K=${bank} ${mode} ×${workers}: ${failed}`);
          rows.push(missingRow(bank, mode, workers, failed));
          continue;
        }
        if (workers === 1 && mode === 'replicated') onePeak = r.worker_peak_rss_bytes;
        const row = rowOf(bank, mode, workers, r);
        console.error(
          `bench-bank-partition: K=${bank} ${mode} ×${workers}: ${row.wall_ms_per_step!.toFixed(0)} ms/step, bank ${row.bank_per_worker.join(' / ')}, peak RSS ${(row.worker_peak_rss_bytes! / GIB).toFixed(2)} GiB`,
        );
        rows.push(row);
      }
    }
  }
  if (values.json) {
    for (const r of rows) console.log(JSON.stringify(r));
    return;
  }
  console.log(
    `bench:bank-partition: click-log default model, onnx engine, batch ${BATCH} per worker, ${steps} steps, ${availableParallelism()} CPUs, load ${load0.map((l) => l.toFixed(2)).join(' ')} at the start`,
  );
  console.log('bank K      mode         workers  wall ms/step  compute ms  allreduce ms  bank per worker           max worker peak RSS');
  for (const r of rows) {
    const f = (x: number | null, w: number) => (x === null ? '—' : x.toFixed(1)).padStart(w);
    console.log(
      [
        String(r.bank).padEnd(11),
        r.mode.padEnd(12),
        String(r.workers).padStart(7),
        f(r.wall_ms_per_step, 13),
        f(r.compute_ms, 11),
        f(r.allreduce_ms, 13),
        ` ${(r.skipped !== undefined ? '—' : r.bank_per_worker.join(' / ')).padEnd(25)}`,
        r.worker_peak_rss_bytes === null ? `— (${r.skipped})` : `${(r.worker_peak_rss_bytes / GIB).toFixed(2)} GiB`,
      ].join(' '),
    );
  }
}

await main();
