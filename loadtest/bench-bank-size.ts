import { randomBytes } from 'node:crypto';
/**
 * `npm run bench:bank-size [-- --json] [--sizes 4096,65536,262144,1048576] [--steps N]`
 *
 * The onnx engine's click-log step (B = 256, d = 128, the default model) against banks up to the
 * config's maximum of 1,048,576 keys: each size trains in its own process (so that its peak memory
 * is its own), with warm-up steps first (ONNX Runtime's first runs of a graph grow its arena), then N
 * timed plain steps and one timed logged step (the bounds). Printed per size: ms/step, its growth
 * over the smallest size beside the growth of K·d·B (the goal: no faster), peak RSS, and the memory a
 * key costs above the smallest size's. The smallest size is the baseline, measured in the same run.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../common/backend.js';
import { defaultConfig } from '../common/config/mod.js';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { openBankTransport } from '../worker/bank/open-bank-transport.js';
import { ClickLogTask } from '../worker/train/clicklog-task.js';
import { contrastiveStep } from '../worker/train/contrastive-step.js';
import { createStepContext } from '../worker/train/step-context.js';

const BATCH = 256;
const WARMUP = 4;

/** What one size's process reports (the `--json` field names are an interface). */
interface SizeResult {
  bank: number;
  ms_per_step: number;
  logged_ms: number;
  peak_rss_bytes: number;
}

const { values } = parseArgs({
  options: {
    json: { type: 'boolean' },
    sizes: { type: 'string', default: '4096,65536,262144,1048576' },
    steps: { type: 'string', default: '3' },
    one: { type: 'string' },
    data: { type: 'string' },
  },
});
const steps = Number(values.steps);

if (values.one !== undefined) {
  process.stdout.write(`${JSON.stringify(await measure(Number(values.one), values.data!))}\n`);
} else {
  await main();
}

/** One size, in this process: warm-up, then the timed steps. */
async function measure(bank: number, data: string): Promise<SizeResult> {
  await initBackend('wasm');
  const config = defaultConfig();
  config.data = data;
  Object.assign(config.train, { batch: BATCH });
  Object.assign(config.bank, { size: bank });
  const task = await ClickLogTask.load(config);
  const transport = await openBankTransport(config, task.model, { job: 'bench', runId: 'bench', bankKey: randomBytes(32), clientName: 'bench-bank-size' });
  const ctx = createStepContext(config, task, transport);
  let step = 0;
  const run = async (logged: boolean) => {
    step++;
    const t0 = performance.now();
    await contrastiveStep(task.model, task.batchAt((step - 1) * BATCH, BATCH), step, ctx, logged);
    return performance.now() - t0;
  };
  for (let i = 0; i < WARMUP; i++) await run(i === WARMUP - 1);
  const times: number[] = [];
  for (let i = 0; i < steps; i++) times.push(await run(false));
  const logged = await run(true);
  await transport.close();
  times.sort((a, b) => a - b);
  return { bank, ms_per_step: times[Math.floor(times.length / 2)]!, logged_ms: logged, peak_rss_bytes: process.resourceUsage().maxRSS * 1024 };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'infobound-bank-size-'));
  try {
    const data = join(dir, 'clicks.tsv');
    await writeSyntheticClickLog(data, { queries: 50_000, sites: 5_000, seed: 1 });
    const sizes = values.sizes.split(',').map(Number);
    const results: SizeResult[] = [];
    const script = new URL(import.meta.url).pathname;
    for (const bank of sizes) {
      const out = execFileSync(process.execPath, [script, '--one', String(bank), '--data', data, '--steps', String(steps)], {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      });
      results.push(JSON.parse(out.trim().split('\n').at(-1)!) as SizeResult);
      if (!values.json) print(results);
    }
    if (values.json) process.stdout.write(`${JSON.stringify({ machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`, batch: BATCH, results })}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The table so far: each size beside the smallest (the baseline). */
function print(results: readonly SizeResult[]): void {
  const base = results[0]!;
  const r = results.at(-1)!;
  if (results.length === 1) process.stdout.write('bank K      ms/step  logged ms  growth  K growth  peak RSS  per key above the baseline\n');
  const growth = r.ms_per_step / base.ms_per_step;
  const kGrowth = r.bank / base.bank;
  const perKey = results.length === 1 ? '' : `${((r.peak_rss_bytes - base.peak_rss_bytes) / (r.bank - base.bank) / 1024).toFixed(2)} KB`;
  process.stdout.write(
    `${String(r.bank).padEnd(10)} ${r.ms_per_step.toFixed(1).padStart(8)} ${r.logged_ms.toFixed(1).padStart(10)} ${growth.toFixed(1).padStart(7)}× ${kGrowth.toFixed(0).padStart(8)}× ${(r.peak_rss_bytes / 2 ** 30).toFixed(2).padStart(6)} GiB  ${perKey}${growth <= kGrowth ? '' : '  (grows faster than K·d·B)'}\n`,
  );
}
