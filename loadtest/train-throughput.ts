/**
 * Throughput of one `infobound train --json` child, shared by the load tests that compare training
 * modes (bench-workers: worker counts; bench-bank: the NATS bank against the ring). How the window is
 * timed is explained in bench-workers.ts.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { StepLine, SummaryLine } from '../common/run-lines.js';

const BIN = fileURLToPath(new URL('../../bin/infobound.js', import.meta.url));
/** Stderr lines kept per child, to say why a run failed. */
const STDERR_TAIL = 20;

/**
 * How a run trains: one process, a cluster over the ring bank, a cluster over the NATS bank, or
 * (bench-workers' baseline) independent single-process trainers side by side on the same machine.
 */
export type Mode = 'single-process' | 'cluster' | 'cluster-nats' | 'side-by-side';

/** The `--json` object of one run (the field names are an interface). */
export interface Result {
  mode: Mode;
  workers: number;
  global_batch: number;
  steps: number;
  /** The steady-state window: from the commit of this step to the last one. */
  window_from_step: number;
  window_steps: number;
  /** Steady-state examples/s: the headline. */
  examples_per_s: number;
  /** examples_per_s over the cluster's 1-worker figure from the same run; null without that run. */
  speedup_vs_1_worker: number | null;
  /** A cluster's examples_per_s over that of as many single-process trainers side by side (bench-workers); null otherwise. */
  vs_side_by_side: number | null;
  /** The summary line's figure, start-up included for the cluster (see the file comment). */
  summary_examples_per_s: number;
  summary_seconds: number;
  /** Wall time per step inside the window. */
  wall_ms_per_step: number;
  /** Means over the workers' step lines inside the window (logged steps). */
  data_ms: number;
  compute_ms: number;
  allreduce_ms: number;
  bank_wait_ms: number;
  cpus: number;
  /** 1-minute load average when this run started. */
  load_1m: number;
  /** Largest peak resident set (VmHWM) of the run's worker processes (the `train` process itself with no --workers). */
  worker_peak_rss_bytes: number;
  /** Each worker's start-up memory line (`memory: bank …, tables …; … in all`), in worker order. */
  worker_memory: string[];
}

/** What one `infobound train --json` child printed, with the arrival time of every step line. */
interface ChildOutput {
  steps: { line: StepLine; at: number }[];
  summary: SummaryLine;
  peakRss: number;
  memory: string[];
}

/** Process groups of the runs in progress (each led by its `train` child), for the exit hook. */
const runningGroups = new Set<number>();

/**
 * Kills a run's process group (`train` and the workers it spawned), or every running one. Called once
 * a run has ended too, because `train` stops its workers with SIGTERM on the way out without waiting
 * for them, and a straggler must not take CPU from the next run.
 */
export function killGroup(group?: number): void {
  for (const g of group === undefined ? [...runningGroups] : [group]) {
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      // ESRCH: every member has exited already.
    }
    runningGroups.delete(g);
  }
}

/** Runs `infobound train ARGS --json` and collects its lines, timing step lines as they arrive. */
async function runTrain(args: string[]): Promise<ChildOutput> {
  // Its own process group, so the workers it spawns can be stopped with it.
  const child = spawn(process.execPath, [BIN, 'train', ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  runningGroups.add(child.pid!);
  const steps: ChildOutput['steps'] = [];
  let summary: SummaryLine | undefined;
  const problems: string[] = [];
  const memory = new Map<string, string>();
  createInterface({ input: child.stderr! }).on('line', (l) => {
    problems.push(l);
    if (problems.length > STDERR_TAIL) problems.shift();
    const m = /^(?:\[(worker-\d+)\] )?(memory: .*)$/.exec(l.replace(/^infobound: /, ''));
    if (m !== null) memory.set(m[1] ?? 'train', m[2]!);
  });
  const rss = new GroupPeakRss(child.pid!);
  const stdoutDone = new Promise<void>((resolve) =>
    createInterface({ input: child.stdout! })
      .on('line', (l) => {
        const at = performance.now();
        let line: StepLine | SummaryLine;
        try {
          line = JSON.parse(l) as StepLine | SummaryLine;
        } catch {
          problems.push(`not JSON on stdout: ${l}`);
          return;
        }
        if (line.type === 'step') steps.push({ line, at });
        else summary = line;
      })
      .on('close', resolve),
  );
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c, s) => resolve([c, s]));
  });
  await stdoutDone;
  rss.stop();
  killGroup(child.pid);
  if (code !== 0 || summary === undefined) throw new Error(`train ${args.join(' ')} exited with ${signal ?? `code ${code}`}:\n${problems.join('\n')}`);
  const byWorker = [...memory].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true })).map(([, line]) => line);
  return { steps, summary, peakRss: rss.peak(args.includes('--workers')), memory: byWorker };
}

/**
 * The peak resident set (VmHWM, /proc) of every process of a process group, sampled until stop():
 * a worker's peak is its own, read while it lives. Linux only; elsewhere the figure is 0.
 */
class GroupPeakRss {
  private readonly peaks = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly group: number) {
    this.timer = setInterval(() => this.sample(), 100);
  }

  /** The largest peak of the group's processes other than its leader (`workersOnly`), or of all. */
  peak(workersOnly: boolean): number {
    this.sample();
    return Math.max(0, ...[...this.peaks].filter(([pid]) => !workersOnly || pid !== this.group).map(([, b]) => b));
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sample(): void {
    let pids: string[];
    try {
      pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
    } catch {
      return;
    }
    for (const pid of pids) {
      try {
        // Field 5 of stat is the process group; the name in field 2 may hold spaces, so count after its ')'.
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) !== this.group) continue;
        const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        if (hwm !== null) this.peaks.set(Number(pid), Math.max(this.peaks.get(Number(pid)) ?? 0, Number(hwm[1]) * 1024));
      } catch {
        // Exited between the listing and the read.
      }
    }
  }
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
}

/** One run of `mode` at `workers` workers and its figures (speed-up filled in by the caller). */
export async function benchOne(
  mode: Mode,
  workers: number,
  data: string,
  runDir: string,
  steps: number,
  batch: number,
  extraArgs: string[] = [],
): Promise<Result> {
  const load = loadavg()[0]!;
  const args = [
    '--data',
    data,
    '--steps',
    String(steps),
    '--run-dir',
    runDir,
    ...(mode === 'single-process' ? [] : ['--workers', String(workers)]),
    ...extraArgs,
  ];
  const out = await runTrain(args);
  // A step's lines (one per worker) arrive together, from one commit: the first of them marks the step.
  const first = out.steps.find((s) => s.line.step >= steps / 2);
  const last = out.steps.at(-1);
  if (first === undefined || last === undefined || last.line.step <= first.line.step)
    throw new Error(`${mode} ×${workers}: no logged step between step ${steps / 2} and the last`);
  const windowSteps = last.line.step - first.line.step;
  const globalBatch = workers * batch;
  const ms = last.at - first.at;
  const inside = out.steps.filter((s) => s.line.step > first.line.step).map((s) => s.line.step_ms);
  return {
    mode,
    workers,
    global_batch: globalBatch,
    steps,
    window_from_step: first.line.step,
    window_steps: windowSteps,
    examples_per_s: (windowSteps * globalBatch * 1000) / ms,
    speedup_vs_1_worker: null,
    vs_side_by_side: null,
    summary_examples_per_s: out.summary.examples_per_s,
    summary_seconds: out.summary.seconds,
    wall_ms_per_step: ms / windowSteps,
    data_ms: mean(inside.map((m) => m.data)),
    compute_ms: mean(inside.map((m) => m.compute)),
    allreduce_ms: mean(inside.map((m) => m.allreduce)),
    bank_wait_ms: mean(inside.map((m) => m.bank_wait)),
    cpus: availableParallelism(),
    load_1m: load,
    worker_peak_rss_bytes: out.peakRss,
    worker_memory: out.memory,
  };
}

/**
 * `trainers` single-process trainers started together on the same data and machine, each in its own
 * run directory: the throughput a cluster of as many workers competes with for the same cores. Their
 * examples/s add up; the other figures are means (peak RSS: the largest).
 */
export async function benchSideBySide(trainers: number, data: string, runDir: (i: number) => string, steps: number, batch: number): Promise<Result> {
  const runs = await Promise.all(Array.from({ length: trainers }, (_, i) => benchOne('single-process', 1, data, runDir(i), steps, batch)));
  const avg = (pick: (r: Result) => number) => mean(runs.map(pick));
  return {
    ...runs[0]!,
    mode: 'side-by-side',
    workers: trainers,
    global_batch: trainers * batch,
    examples_per_s: runs.reduce((sum, r) => sum + r.examples_per_s, 0),
    summary_examples_per_s: runs.reduce((sum, r) => sum + r.summary_examples_per_s, 0),
    wall_ms_per_step: avg((r) => r.wall_ms_per_step),
    data_ms: avg((r) => r.data_ms),
    compute_ms: avg((r) => r.compute_ms),
    allreduce_ms: avg((r) => r.allreduce_ms),
    bank_wait_ms: avg((r) => r.bank_wait_ms),
    worker_peak_rss_bytes: Math.max(...runs.map((r) => r.worker_peak_rss_bytes)),
    worker_memory: runs.flatMap((r) => r.worker_memory),
  };
}
