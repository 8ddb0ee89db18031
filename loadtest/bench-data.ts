/**
 * `npm run bench:data [-- --json] [--queries N] [--sites M] [--workers 1,2,4] [--eval-sites 200000,1000000] [--eval-workers 1,2]`
 *
 * The data path of issue 13 at scale, on generated click logs in a temp directory:
 *
 * 1. Prepare: `prepareDataset` over a log of about 10 M rows (2.5 M queries, 200 k sites), rows/s and
 *    MB/s, beside the baseline measured on the same file in the same run: the training reader that
 *    reads the whole log into memory (`readClickLog`). Each pass in its own process.
 * 2. Start: a coordinator and W `infobound worker` processes on that dataset (W = 1, 2, 4), 3 steps, no
 *    evaluation; per worker the seconds from its spawn to its "loaded" line and to the job's first
 *    committed step, and its peak RSS (VmHWM from /proc, polled every 200 ms). The baseline, in the
 *    same run: a worker's load of the raw log as before prepared datasets (`ClickLogTask.load`, which
 *    reads, interns and featurises the whole log), in a process of its own.
 * 3. Evaluation: one step, then held-out retrieval (eval.max_queries 1000) against every site, shared
 *    by 1 or 2 workers, on the 200 k-site dataset and on a log of 1 M sites; the summary's
 *    eval_seconds. The single worker is the baseline.
 *
 * The goals: prepare at ≥ 1 M rows/s, and a worker's time to first step under 2 s whatever the
 * dataset's size.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { defaultConfig } from '../common/config/mod.js';
import type { SummaryLine } from '../common/run-lines.js';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { BIN } from '../testing/cluster-test-helpers.js';
import { runPass, type PassResult } from './prepare-pass.js';
import { positiveInts } from './bench-flags.js';

const GOAL_ROWS_PER_S = 1e6;
const GOAL_FIRST_STEP_S = 2;
/** A job that runs past this is killed and reported as failed. */
const JOB_DEADLINE_MS = 15 * 60_000;

/** One worker of a measured job (the `--json` field names are an interface). */
interface WorkerFigures {
  /** Seconds from the worker's spawn to its "loaded" line, and to the job's first committed step. */
  loaded_s: number | null;
  first_step_s: number | null;
  peak_rss_bytes: number;
}

/** A measured job. */
interface JobFigures {
  part: 'start' | 'eval';
  data: 'prepared';
  workers: number;
  sites: number;
  per_worker: WorkerFigures[];
  eval_seconds: number | null;
  eval_members: number | null;
}

const { values } = parseArgs({
  options: {
    json: { type: 'boolean' },
    queries: { type: 'string', default: '2500000' },
    sites: { type: 'string', default: '200000' },
    workers: { type: 'string', default: '1,2,4' },
    'eval-sites': { type: 'string', default: '200000,1000000' },
    'eval-workers': { type: 'string', default: '1,2' },
  },
});

/** Peak RSS of a live process: VmHWM of /proc/PID/status, 0 once it is gone. */
function peakRss(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Runs a coordinator and `workers` workers of the job in `configPath` to its end. */
async function runJob(configPath: string, workers: number, say: (line: string) => void): Promise<{ summary: SummaryLine; perWorker: WorkerFigures[] }> {
  const env = { ...process.env, INFOBOUND_TOKEN: 'bench' };
  const coordinator = spawn(process.execPath, [BIN, 'coordinator', '--config', configPath, '--workers', String(workers), '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  const children: ChildProcess[] = [coordinator];
  const deadline = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), JOB_DEADLINE_MS);
  try {
    let stderr = '';
    const address = await new Promise<string>((resolve, reject) => {
      coordinator.once('exit', (code) => reject(new Error(`coordinator exited with ${code}: ${stderr.trim().split('\n').at(-1)}`)));
      coordinator.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /listening on (\S+);/.exec(stderr);
        if (m) resolve(m[1]!);
      });
    });
    const figures: WorkerFigures[] = [];
    const spawned: number[] = [];
    for (let i = 0; i < workers; i++) {
      const w = spawn(process.execPath, [BIN, 'worker', '--coordinator', address, '--config', configPath, '--worker-id', `w${i}`], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env,
      });
      children.push(w);
      spawned.push(performance.now());
      const f: WorkerFigures = { loaded_s: null, first_step_s: null, peak_rss_bytes: 0 };
      figures.push(f);
      createInterface({ input: w.stderr! }).on('line', (line) => {
        if (f.loaded_s === null && /loaded in/.test(line)) f.loaded_s = (performance.now() - spawned[i]!) / 1000;
        if (/error|Error/.test(line)) say(`  w${i}: ${line}`);
      });
    }
    const poll = setInterval(
      () => children.slice(1).forEach((w, i) => (figures[i]!.peak_rss_bytes = Math.max(figures[i]!.peak_rss_bytes, peakRss(w.pid!)))),
      200,
    );
    let summary: SummaryLine | undefined;
    for await (const line of createInterface({ input: coordinator.stdout! })) {
      const l = JSON.parse(line) as { type: string };
      if (l.type === 'step' && figures[0]!.first_step_s === null) figures.forEach((f, i) => (f.first_step_s = (performance.now() - spawned[i]!) / 1000));
      if (l.type === 'summary') summary = l as unknown as SummaryLine;
    }
    clearInterval(poll);
    if (summary === undefined) throw new Error(`the job ended without a summary: ${stderr.trim().split('\n').at(-1)}`);
    return { summary, perWorker: figures };
  } finally {
    clearTimeout(deadline);
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }
}

/** Writes the config of a measured job and returns its path. */
function jobConfig(dir: string, name: string, data: string, evaluate: boolean): string {
  const c = defaultConfig();
  Object.assign(c, { data, run_dir: join(dir, `run-${name}`) });
  Object.assign(c.train, { steps: evaluate ? 1 : 3, checkpoint_every: 0 });
  Object.assign(c.eval, { enabled: evaluate, max_queries: 1000 });
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(c));
  return path;
}

async function main(): Promise<void> {
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const dir = await mkdtemp(join(tmpdir(), 'infobound-bench-data-'));
  try {
    const queries = Number(values.queries);
    const sites = Number(values.sites);
    say(`generating ${queries} queries × ${sites} sites`);
    const log = join(dir, 'clicks.tsv');
    const meta = await writeSyntheticClickLog(log, { queries, sites, seed: 13 });
    say(`${meta.rows} rows, ${(statSync(log).size / 1e6).toFixed(0)} MB; preparing, then reading whole (the baseline)`);
    const ds = join(dir, 'ds');
    const passes: PassResult[] = [runPass('prepare', log, ds), runPass('read_clicklog', log, join(dir, 'unused'))];
    const [prepare, baseline] = passes as [PassResult, PassResult];
    say('the raw log loaded as a worker did before prepared datasets (the baseline of the start)');
    const rawLoad = runPass('load_raw_task', log, join(dir, 'unused'));

    const jobs: JobFigures[] = [];
    const measure = async (part: JobFigures['part'], data: JobFigures['data'], path: string, workers: number, siteCount: number) => {
      say(`${part}: ${workers} worker${workers === 1 ? '' : 's'} on the prepared dataset (${siteCount} sites)`);
      const { summary, perWorker } = await runJob(path, workers, say);
      jobs.push({
        part,
        data,
        workers,
        sites: siteCount,
        per_worker: perWorker,
        eval_seconds: summary.eval_seconds ?? null,
        eval_members: summary.eval_members ?? null,
      });
    };
    for (const w of positiveInts('--workers', values.workers)) await measure('start', 'prepared', jobConfig(dir, `start-${w}`, ds, false), w, sites);
    rmSync(log);

    for (const s of positiveInts('--eval-sites', values['eval-sites'])) {
      let data = ds;
      if (s !== sites) {
        say(`generating a log of ${s} sites for the evaluation`);
        const other = join(dir, `clicks-${s}.tsv`);
        await writeSyntheticClickLog(other, { queries: s, sites: s, seed: 14 });
        data = join(dir, `ds-${s}`);
        runPass('prepare', other, data);
        rmSync(other);
      }
      for (const w of positiveInts('--eval-workers', values['eval-workers']))
        await measure('eval', 'prepared', jobConfig(dir, `eval-${s}-${w}`, data, true), w, s);
    }
    report(prepare, baseline, rawLoad, jobs, meta.rows);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(prepare: PassResult, baseline: PassResult, rawLoad: PassResult, jobs: JobFigures[], rows: number): void {
  const firstStep = (j: JobFigures) => Math.max(...j.per_worker.map((w) => w.first_step_s ?? Number.NaN));
  const prepared = jobs.filter((j) => j.part === 'start' && j.data === 'prepared');
  const summary = {
    rows,
    prepare_rows_per_s: prepare.rows_per_s,
    baseline_rows_per_s: baseline.rows_per_s,
    raw_load_seconds: rawLoad.seconds,
    raw_load_peak_rss_bytes: rawLoad.peak_rss_bytes,
    goal_rows_per_s: GOAL_ROWS_PER_S,
    prepare_goal_met: prepare.rows_per_s >= GOAL_ROWS_PER_S,
    first_step_s: Math.max(...prepared.map(firstStep)),
    goal_first_step_s: GOAL_FIRST_STEP_S,
    first_step_goal_met: prepared.every((j) => firstStep(j) < GOAL_FIRST_STEP_S),
    cpus: cpus().length,
  };
  if (values.json) {
    for (const p of [prepare, baseline, rawLoad]) console.log(JSON.stringify(p));
    for (const j of jobs) console.log(JSON.stringify(j));
    console.log(JSON.stringify(summary));
    return;
  }
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  console.log(`click log: ${rows} rows, ${cpus().length} cpus`);
  for (const p of [prepare, baseline]) {
    console.log(
      `${p.pass.padEnd(14)} ${(p.rows_per_s / 1e6).toFixed(3)} M rows/s  ${p.mb_per_s.toFixed(1)} MB/s  (${p.seconds.toFixed(1)} s, peak RSS ${mib(p.peak_rss_bytes)})`,
    );
  }
  console.log(`prepare goal ${GOAL_ROWS_PER_S / 1e6} M rows/s: ${summary.prepare_goal_met ? 'met' : 'not met'}`);
  console.log(`baseline of the start: a worker's load of the raw log ${rawLoad.seconds.toFixed(1)} s, peak RSS ${mib(rawLoad.peak_rss_bytes)}`);
  console.log('part   data      workers  sites     loaded (s)   first step (s)   peak RSS per worker   eval (s)');
  for (const j of jobs) {
    const each = (f: (w: WorkerFigures) => string) => j.per_worker.map(f).join(' ');
    console.log(
      [
        j.part.padEnd(6),
        j.data.padEnd(9),
        String(j.workers).padStart(7),
        String(j.sites).padStart(8),
        each((w) => (w.loaded_s === null ? 'n/a' : w.loaded_s.toFixed(1))).padStart(12),
        each((w) => (w.first_step_s === null ? 'n/a' : w.first_step_s.toFixed(1))).padStart(16),
        each((w) => mib(w.peak_rss_bytes)).padStart(21),
        (j.eval_seconds === null ? '' : `${j.eval_seconds.toFixed(1)} (${j.eval_members} members)`).padStart(10),
      ].join(' '),
    );
  }
  console.log(
    `time to first step on the prepared dataset: ${summary.first_step_s.toFixed(1)} s; goal under ${GOAL_FIRST_STEP_S} s: ${summary.first_step_goal_met ? 'met' : 'not met'}`,
  );
}

await main();
