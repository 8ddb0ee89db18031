/**
 * `npm run bench:workers [-- --json] [--workers 1,2,4] [--steps S]`
 *
 * Training throughput of the default click-log config at N workers (`infobound train --workers N`: a
 * coordinator and N worker processes on 127.0.0.1, ring all-reduce over gRPC) beside the single-process
 * trainer (`infobound train` without --workers), measured in the same run on a synthetic click log of
 * 20,000 queries and 2,000 sites (seed 1) written to a temp directory. Each worker keeps the default
 * batch of 256, so the global batch grows with N, as in data-parallel training. The issue's goal: two
 * workers at ≥ 1.7× one worker's examples/s on a 2-core machine.
 *
 * The headline is the steady-state rate: examples committed between the step line of the first logged
 * step at or after S/2 and the last step's line, divided by the wall time between the two lines'
 * arrival on the child's stdout. Both modes print a step line when the step is done for good (the
 * trainer after applying it, the coordinator on commit), so the window is the same event in both, and
 * it holds logged and plain steps in the proportion of a real run (one in `train.log_every`). The
 * summary's own `examples_per_s` is printed beside it but is not comparable across modes: the cluster's
 * clock starts with the coordinator, so it includes the workers' start-up (node, tfjs, reading the log)
 * and rank 0's evaluation, while the trainer's runs from after loading the data to its last step. The
 * step lines' own `examples_per_s` is no throughput either: in the cluster it times one logged step
 * (the slow kind, which computes the bounds) without the coordinator's round trips.
 *
 * With 2 in --workers, two single-process trainers also run side by side on the same data (each its
 * own run): the throughput that a 2-worker cluster competes with for the same cores. The 2-worker
 * cluster's examples/s over theirs together is printed (issue 14's goal: at least 95%).
 *
 * The per-step breakdown (compute, all-reduce, bank wait) is the mean over every worker's step lines
 * inside the window, so it describes logged steps. A worker reports a step before applying it, so its
 * compute leaves out the optimiser update that the trainer's includes; its all-reduce time includes
 * waiting for the slowest peer to finish computing, so CPU contention shows up there as well.
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultConfig } from '../common/config/mod.js';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { benchOne, benchSideBySide, killGroup, type Result } from './train-throughput.js';
import { positiveInts } from './bench-flags.js';

/** The whole run stops (exit 1) past this: the issue bounds it at 4 minutes on a 2-core machine. */
const RUN_DEADLINE_MS = 230_000;

function row(r: Result): string {
  const f = (x: number, d: number, w: number) => x.toFixed(d).padStart(w);
  return [
    r.mode.padEnd(14),
    String(r.workers).padStart(7),
    String(r.global_batch).padStart(12),
    f(r.examples_per_s, 0, 11),
    (r.speedup_vs_1_worker === null ? 'n/a' : `${r.speedup_vs_1_worker.toFixed(2)}×`).padStart(9),
    f(r.wall_ms_per_step, 1, 9),
    f(r.compute_ms, 1, 9),
    f(r.allreduce_ms, 1, 11),
    f(r.bank_wait_ms, 1, 11),
    f(r.summary_examples_per_s, 0, 14),
  ].join(' ');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      workers: { type: 'string', default: '1,2,4' },
      steps: { type: 'string', default: '60' },
    },
  });
  const worlds = positiveInts('--workers', values.workers);
  const steps = Number(values.steps);
  const { batch, log_every: logEvery } = defaultConfig().train;
  // The window needs a logged step at or after S/2 and before S: with one every log_every steps, S ≥ 2·log_every.
  if (!Number.isInteger(steps) || steps < 2 * logEvery)
    throw new Error(`--steps: expected an integer of at least ${2 * logEvery} (two log intervals), got "${values.steps}"`);

  const dir = await mkdtemp(join(tmpdir(), 'infobound-bench-workers-'));
  // Runs on every way out (the end, an error, the deadline, a signal): no worker outlives the benchmark.
  process.once('exit', () => {
    killGroup();
    rmSync(dir, { recursive: true, force: true });
  });
  setTimeout(() => {
    console.error(`bench-workers: over ${RUN_DEADLINE_MS / 1000} s, stopping (fewer --steps or --workers?)`);
    process.exit(1);
  }, RUN_DEADLINE_MS).unref();
  // The runs are in their own process groups, out of reach of the terminal's Ctrl-C: the exit hook stops them.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 20_000, sites: 2_000, seed: 1 });
  const load0 = loadavg();
  const results: Result[] = [];
  for (const [mode, n] of [['single-process', 1] as const, ...worlds.map((w) => ['cluster', w] as const)]) {
    const r = await benchOne(mode, n, data, join(dir, `run-${mode}-${n}`), steps, batch);
    // Progress on stderr: the table (or the JSON lines) on stdout comes once the speed-ups are known.
    console.error(`bench-workers: ${mode} ×${n}: ${r.examples_per_s.toFixed(0)} examples/s`);
    results.push(r);
  }
  // The cluster's real competitor on one machine: as many independent trainers sharing its cores.
  if (worlds.includes(2)) {
    const pair = await benchSideBySide(2, data, (i) => join(dir, `run-side-by-side-${i}`), steps, batch);
    console.error(`bench-workers: 2 single-process trainers side by side: ${pair.examples_per_s.toFixed(0)} examples/s together`);
    results.push(pair);
    const two = results.find((r) => r.mode === 'cluster' && r.workers === 2)!;
    two.vs_side_by_side = two.examples_per_s / pair.examples_per_s;
  }
  const one = results.find((r) => r.mode === 'cluster' && r.workers === 1);
  if (one !== undefined) for (const r of results) r.speedup_vs_1_worker = r.examples_per_s / one.examples_per_s;
  if (values.json) {
    for (const r of results) console.log(JSON.stringify(r));
    return;
  }
  console.log(
    `bench:workers: click-log config, batch ${batch} per worker, ${steps} steps, ${availableParallelism()} CPUs, load average ${load0.map((l) => l.toFixed(2)).join(' ')} at the start, ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at the end`,
  );
  console.log(
    `steady examples/s: steps ${results[0]!.window_from_step}…${steps}, timed on the step lines' arrival; summary ex/s: the run's own figure (cluster: start-up and eval included)`,
  );
  console.log("ms columns: per step; compute, all-reduce and bank wait are means over the workers' logged steps in the window");
  console.log('');
  console.log('mode           workers global batch  examples/s speed-up  wall ms compute ms allreduce ms bank-wait ms summary ex/s');
  for (const r of results) console.log(row(r));
  const two = results.find((r) => r.vs_side_by_side !== null);
  if (two !== undefined)
    console.log(`\n2-worker cluster / 2 trainers side by side: ${(100 * two.vs_side_by_side!).toFixed(1)}% (issue 14's goal: at least 95%)`);
}

await main();
