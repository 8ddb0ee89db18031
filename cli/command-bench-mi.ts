import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../common/backend.js';
import { ESTIMATORS, type Estimator } from '../common/estimators.js';
import { UserError } from '../common/user-error.js';
import { CRITICS, type CriticKind } from '../worker/mi-benchmark/gaussian-critic.js';
import { runStaircase, type LevelResult } from '../worker/mi-benchmark/mi-staircase.js';
import { outputDirectory } from '../common/output-directory.js';
import { parseFlags, positiveInt } from './parse-flags.js';

export const BENCH_MI_USAGE = `usage: infobound bench-mi [--estimators infonce,nwj,dv,mine,jsd] [--mi 2,4,6,8,10] [--batch 64]
                         [--steps N] [--critic separable|concat] [--cubic] [--seed S] [--out DIR] [--json]

The correlated-Gaussian benchmark of Poole et al. 2019: d = 20, x ~ N(0, I), y = ρx + sqrt(1−ρ²)·ε,
I(X;Y) = −(d/2)·log(1−ρ²). For each estimator a critic (an MLP, trained with Adam at 5e-4) climbs the
MI staircase, --steps per level (default 500); --cubic maps y → y³ (same MI). Prints, per estimator and
level, the mean and standard deviation of the estimate over the last half of the level beside the
true MI; with --json one object per (estimator, level). --out DIR (default runs/bench-mi-<time>)
gets bench-mi.jsonl, which \`infobound report DIR\` plots.`;

/** Parses a comma-separated list, each item checked by `item`, with a one-line error naming the flag. */
function list<T>(flag: string, text: string, item: (s: string) => T | undefined, expected: string): T[] {
  const items = text.split(',').map((s) => s.trim());
  return items.map((s) => {
    const v = item(s);
    if (v === undefined) throw new UserError(`${flag}: "${s}" is not ${expected}`);
    return v;
  });
}

/** `infobound bench-mi`. */
export async function benchMiCommand(argv: string[]): Promise<number> {
  const values = parseFlags('bench-mi', argv, {
    estimators: { type: 'string' },
    mi: { type: 'string' },
    batch: { type: 'string' },
    steps: { type: 'string' },
    critic: { type: 'string' },
    cubic: { type: 'boolean' },
    seed: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(BENCH_MI_USAGE + '\n');
    return 0;
  }
  const estimators = list(
    '--estimators',
    values.estimators ?? ESTIMATORS.join(','),
    (s) => ((ESTIMATORS as readonly string[]).includes(s) ? (s as Estimator) : undefined),
    `one of ${ESTIMATORS.join(', ')}`,
  );
  const levels = list(
    '--mi',
    values.mi ?? '2,4,6,8,10',
    (s) => (s !== '' && Number.isFinite(Number(s)) && Number(s) > 0 ? Number(s) : undefined),
    'a positive number of nats',
  );
  const critic = (values.critic ?? 'separable') as CriticKind;
  if (!(CRITICS as readonly string[]).includes(critic)) throw new UserError(`--critic must be one of ${CRITICS.join(', ')}, got "${critic}"`);
  const batch = positiveInt('--batch', values.batch ?? '64', 2);
  const steps = positiveInt('--steps', values.steps ?? '500', 2);
  const seed = positiveInt('--seed', values.seed ?? '1', 0);
  const out = values.out ?? join('runs', `bench-mi-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const json = values.json === true;
  outputDirectory('--out', out);
  const path = join(out, 'bench-mi.jsonl');
  writeFileSync(path, '');
  await initBackend('wasm');
  const options = { estimators, levels, batch, steps, critic, cubic: values.cubic === true, dim: 20, lr: 5e-4, maxGradNorm: null, seed };
  appendFileSync(path, JSON.stringify({ type: 'bench-mi', ...options }) + '\n');
  const every = Math.max(1, Math.floor(steps / 100));
  const total = estimators.length * levels.length;
  let done = 0;
  const results = await runStaircase(
    options,
    (r) => {
      done++;
      appendFileSync(path, JSON.stringify({ type: 'level', ...r }) + '\n');
      if (json) process.stdout.write(JSON.stringify(r) + '\n');
      process.stderr.write(
        `infobound: bench-mi ${done}/${total}: ${r.estimator} at ${r.true_mi} nats: ${r.mean.toFixed(3)} ± ${r.std.toFixed(3)}${r.nonfinite > 0 ? ` (${r.nonfinite} non-finite estimates left out)` : ''}\n`,
      );
    },
    (p) => {
      if (p.step % every === 0) appendFileSync(path, JSON.stringify({ type: 'point', ...p }) + '\n');
    },
  );
  if (!json) process.stdout.write(formatTable(results, batch) + `\nwritten to ${path}\n`);
  return 0;
}

/** Estimators as rows, MI levels as columns: "mean ± std", columns as wide as their widest cell. */
function formatTable(results: readonly LevelResult[], batch: number): string {
  const levels = [...new Set(results.map((r) => r.true_mi))];
  const estimators = [...new Set(results.map((r) => r.estimator))];
  const cell = (r: LevelResult | undefined) => {
    if (r === undefined) return '';
    if (!Number.isFinite(r.mean)) return 'overflowed';
    return `${r.mean.toFixed(2)} ± ${r.std.toFixed(2)}${r.nonfinite > 0 ? '*' : ''}`;
  };
  const rows = estimators.map((e) => [e, ...levels.map((l) => cell(results.find((r) => r.estimator === e && r.true_mi === l)))]);
  const header = ['true MI (nats)', ...levels.map(String)];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const render = (row: string[]) => row.map((c, i) => (i === 0 ? c.padEnd(widths[0]!) : c.padStart(widths[i]! + 2))).join('');
  const lines = [render(header), ...rows.map(render)];
  lines.push(`InfoNCE cannot exceed log(batch) = log ${batch} = ${Math.log(batch).toFixed(3)} nats.`);
  if (results.some((r) => r.nonfinite > 0))
    lines.push("* some estimates of the level were not finite (the critic's exponentials overflowed) and are left out.");
  return lines.join('\n') + '\n';
}
