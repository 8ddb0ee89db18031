/**
 * `npm run bench:coordinator [-- --json] [--workers 16,64,256] [--seconds S] [--heartbeat-ms MS]`
 *
 * Load on one coordinator: a real `infobound coordinator` process on 127.0.0.1, and N simulated
 * workers in this process — each its own gRPC client (its own connection), which joins, keeps a
 * heartbeat stream, and reports steps with synthetic figures, taking each next assignment from the
 * acknowledgement as real workers do (NextStep only after a membership change; nothing is trained:
 * a step's compute and all-reduce cost nothing, so the step rate is the coordinator's own limit). For
 * each N it prints ReportStep latency (p50, p99; ReportStep answers once every member reported, so it
 * includes waiting for the slowest worker), NextStep's when any was needed, and committed steps/s
 * over S seconds.
 * Baseline from the same run: the gRPC health Check round trip to the same coordinator process.
 * The goal: 256 workers at ≥ 10 committed steps/s with p99 < 50 ms on a 2-core machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { healthClient } from '../common/grpc-health-client.js';
import { defaultConfig } from '../common/config/mod.js';
import { FakeWorker } from '../testing/fake-worker.js';
import { jobEpochOf } from '../worker/train/load-task.js';
import type { Assignment__Output } from '../proto/generated/infobound/v1/Assignment.js';

const BIN = fileURLToPath(new URL('../../bin/infobound.js', import.meta.url));
/** Examples per worker per step: any value. */
const BATCH = 16;
/** The coordinator counts its data's epoch: a click log of this many queries with this many clicks each. */
const LOG_QUERIES = 2000;
const LOG_CLICKS = 500;

/** The `--json` object of one N (field names are an interface). */
interface Result {
  workers: number;
  seconds: number;
  committed_steps: number;
  committed_steps_per_s: number;
  next_step_p50_ms: number;
  next_step_p99_ms: number;
  report_step_p50_ms: number;
  report_step_p99_ms: number;
  /** A gRPC health Check every 20 ms while the workers run: the coordinator's latency under the load. */
  health_check_loaded_p50_ms: number;
  health_check_loaded_p99_ms: number;
  /** Baseline: the same Check on the idle coordinator, after the run. */
  health_check_idle_p50_ms: number;
  health_check_idle_p99_ms: number;
  /** Calls that failed (generation changes, deadlines): 0 in a healthy run. */
  errors: number;
  cpus: number;
  load_1m: number;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Starts `infobound coordinator` for `workers` and resolves with its address. */
async function startCoordinator(dir: string, workers: number): Promise<{ address: string; process: ChildProcess; epochSize: number }> {
  const config = defaultConfig();
  const data = join(dir, 'clicks.tsv');
  writeFileSync(data, Array.from({ length: LOG_QUERIES }, (_, i) => `query ${i}\tsite ${i % 97}\t${LOG_CLICKS}\n`).join(''));
  Object.assign(config, { kind: 'clicklog', data, run_dir: join(dir, `run-${workers}`) });
  Object.assign(config.train, { batch: BATCH, steps: 1_000_000_000, checkpoint_every: 0 });
  const path = join(dir, `config-${workers}.json`);
  writeFileSync(path, JSON.stringify(config));
  const p = spawn(process.execPath, [BIN, 'coordinator', '--config', path, '--workers', String(workers)], { stdio: ['ignore', 'ignore', 'pipe'] });
  const address = await new Promise<string>((resolve, reject) => {
    const lines: string[] = [];
    p.once('exit', (code) => reject(new Error(`coordinator exited with ${code}:\n${lines.join('\n')}`)));
    createInterface({ input: p.stderr! }).on('line', (line) => {
      lines.push(line);
      const m = /listening on (\S+);/.exec(line);
      if (m) resolve(m[1]!);
    });
  });
  p.removeAllListeners('exit');
  // What the simulated workers must report: the coordinator's own count.
  return { address, process: p, epochSize: (await jobEpochOf(config)).size };
}

/** A gRPC health client of the coordinator, and one timed Check (ms). */
function healthProbe(address: string): { check(): Promise<number>; close(): void } {
  const client = healthClient(address);
  return {
    check: async () => {
      const t0 = performance.now();
      await client.check('');
      return performance.now() - t0;
    },
    close: () => client.close(),
  };
}

/** One N: join everyone, loop steps for `seconds`, measure. */
async function benchOne(dir: string, n: number, seconds: number, heartbeatMs: number): Promise<Result> {
  const load = loadavg()[0]!;
  const coordinator = await startCoordinator(dir, n);
  const workers = Array.from(
    { length: n },
    (_, i) => new FakeWorker(coordinator.address, { workerId: `sim-${i}`, epochSize: coordinator.epochSize, callTimeoutMs: 30_000 }),
  );
  try {
    await Promise.all(workers.map((w) => w.join()));
    for (const w of workers) w.startHeartbeat(heartbeatMs);
    const nextMs: number[] = [];
    const reportMs: number[] = [];
    let errors = 0;
    let firstCommitted = -1;
    let lastCommitted = 0;
    let windowStart = 0;
    const stopAt = performance.now() + seconds * 1000;
    /** Once the time is up: the last step; every worker reports up to it, so none is left waiting. */
    let finalStep = Number.POSITIVE_INFINITY;
    const loop = async (w: FakeWorker): Promise<void> => {
      // As real workers do: the assignment a step's acknowledgement carries, else NextStep.
      let next: Assignment__Output | null = null;
      for (;;) {
        if (finalStep === Number.POSITIVE_INFINITY && performance.now() >= stopAt) finalStep = lastCommitted + 1;
        try {
          let a = next;
          next = null;
          if (a === null || a.generation !== w.generation) {
            const t0 = performance.now();
            a = await w.nextStep();
            nextMs.push(performance.now() - t0);
          }
          if (a.done || a.step > finalStep) return;
          w.assignment = a;
          const t0 = performance.now();
          const ack = await w.report(a.step);
          reportMs.push(performance.now() - t0);
          next = ack.next;
          if (firstCommitted < 0) {
            firstCommitted = ack.committed_step;
            windowStart = performance.now();
          }
          lastCommitted = Math.max(lastCommitted, ack.committed_step);
          if (ack.committed_step >= finalStep) return;
        } catch (err) {
          if (errors++ < 3) console.error(`bench-coordinator: ${w.id}: ${(err as Error).message}`);
          await w.waitForMembership((m) => m.generation > w.generation, 10_000).catch(() => undefined);
        }
      }
    };
    const probe = healthProbe(coordinator.address);
    const loaded: number[] = [];
    let running = true;
    const probing = (async () => {
      while (running) {
        loaded.push(await probe.check());
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await Promise.all(workers.map(loop));
    const window = (performance.now() - windowStart) / 1000;
    running = false;
    await probing;
    const idle: number[] = [];
    for (let i = 0; i < 300; i++) idle.push(await probe.check());
    probe.close();
    loaded.sort((a, b) => a - b);
    idle.sort((a, b) => a - b);
    nextMs.sort((a, b) => a - b);
    reportMs.sort((a, b) => a - b);
    const committed = lastCommitted - firstCommitted;
    return {
      workers: n,
      seconds,
      committed_steps: committed,
      committed_steps_per_s: committed / window,
      next_step_p50_ms: quantile(nextMs, 0.5),
      next_step_p99_ms: quantile(nextMs, 0.99),
      report_step_p50_ms: quantile(reportMs, 0.5),
      report_step_p99_ms: quantile(reportMs, 0.99),
      health_check_loaded_p50_ms: quantile(loaded, 0.5),
      health_check_loaded_p99_ms: quantile(loaded, 0.99),
      health_check_idle_p50_ms: quantile(idle, 0.5),
      health_check_idle_p99_ms: quantile(idle, 0.99),
      errors,
      cpus: availableParallelism(),
      load_1m: load,
    };
  } finally {
    for (const w of workers) w.close();
    coordinator.process.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      workers: { type: 'string', default: '16,64,256' },
      seconds: { type: 'string', default: '10' },
      'heartbeat-ms': { type: 'string', default: '1000' },
    },
  });
  const worlds = values.workers.split(',').map(Number);
  const seconds = Number(values.seconds);
  const heartbeatMs = Number(values['heartbeat-ms']);
  if (worlds.some((w) => !Number.isInteger(w) || w < 1)) throw new Error(`--workers: expected positive integers separated by commas, got "${values.workers}"`);
  if (!(seconds > 0 && seconds <= 120)) throw new Error(`--seconds: expected a number in (0, 120], got "${values.seconds}"`);
  if (!Number.isInteger(heartbeatMs) || heartbeatMs < 50) throw new Error(`--heartbeat-ms: expected an integer ≥ 50, got "${values['heartbeat-ms']}"`);
  const dir = mkdtempSync(join(tmpdir(), 'infobound-bench-coordinator-'));
  try {
    const results: Result[] = [];
    for (const n of worlds) {
      const r = await benchOne(dir, n, seconds, heartbeatMs);
      console.error(`bench-coordinator: ${n} workers: ${r.committed_steps_per_s.toFixed(1)} committed steps/s`);
      results.push(r);
    }
    if (values.json) {
      for (const r of results) console.log(JSON.stringify(r));
      return;
    }
    const f = (x: number, w: number, d = 1) => x.toFixed(d).padStart(w);
    console.log(
      `bench:coordinator: ${seconds} s per row, heartbeat every ${heartbeatMs} ms, ${availableParallelism()} CPUs, load average ${loadavg()[0]!.toFixed(2)}`,
    );
    console.log('ReportStep answers at the commit, so it includes waiting for the slowest of the N workers; NextStep is called only at the start');
    console.log('workers  steps/s  ReportStep p50/p99 ms  NextStep p50/p99 ms  Check under load p50/p99 ms  Check idle p50/p99 ms  errors');
    for (const r of results) {
      console.log(
        `${String(r.workers).padStart(7)} ${f(r.committed_steps_per_s, 8)} ${f(r.report_step_p50_ms, 12, 2)} ${f(r.report_step_p99_ms, 9, 2)} ${f(r.next_step_p50_ms, 10, 2)} ${f(r.next_step_p99_ms, 9, 2)} ${f(r.health_check_loaded_p50_ms, 16, 2)} ${f(r.health_check_loaded_p99_ms, 11, 2)} ${f(r.health_check_idle_p50_ms, 11, 2)} ${f(r.health_check_idle_p99_ms, 9, 2)} ${String(r.errors).padStart(7)}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
