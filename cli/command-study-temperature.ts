import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig } from '../common/config/mod.js';
import { infonceTemperatureCap } from '../common/estimators.js';
import { readClickLogMeta, writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { UserError } from '../common/user-error.js';
import { train } from '../worker/train/trainer.js';
import { outputDirectory } from '../common/output-directory.js';
import { parseFlags, positiveInt } from './parse-flags.js';

export const STUDY_TEMPERATURE_USAGE = `usage: infobound study-temperature [--data FILE] [--steps N] [--out DIR] [--json]

How the temperature τ changes the tightness of the InfoNCE bound: trains the click-log model once per
τ ∈ {0.05, 0.1, 0.2, 0.5, 1.0, learnable (CLIP's, from 0.07)}, all else fixed (default config, --steps
each, default 300), and prints each run's final bound beside its ceiling log(K+1), the cap unit-norm
embeddings put on it at that τ, log N − log(1 + (N−1)e^(−2/τ)), and the data's true MI. Without --data
it writes a synthetic click log with known MI (20,000 queries, 2,000 sites, seed 1) into DIR.
--out DIR (default runs/study-temperature-<time>) gets temperature.jsonl and one run directory per τ;
\`infobound report DIR\` plots them.`;

/** The temperatures of the study; null is the learnable one. */
export const STUDY_TEMPERATURES: readonly (number | null)[] = [0.05, 0.1, 0.2, 0.5, 1.0, null];

/** One τ's outcome (the `--json` object; field names are an interface). */
export interface TemperatureResult {
  /** The fixed τ, or the learnable run's initial value. */
  tau: number;
  learnable: boolean;
  /** τ at the end of training (differs from `tau` only when learnable). */
  final_tau: number;
  /** InfoNCE, NWJ and DV over the last quarter of the logged steps. */
  infonce: number;
  nwj: number;
  dv: number;
  /** log(K+1): the bank's ceiling. */
  ceiling: number;
  /** The cap unit-norm embeddings put on InfoNCE at the final τ. */
  temperature_cap: number;
  true_mi: number | null;
  steps: number;
  run_dir: string;
}

/** `infobound study-temperature`. */
export async function studyTemperatureCommand(argv: string[]): Promise<number> {
  const values = parseFlags('study-temperature', argv, {
    data: { type: 'string' },
    steps: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(STUDY_TEMPERATURE_USAGE + '\n');
    return 0;
  }
  const steps = positiveInt('--steps', values.steps ?? '300');
  const out = values.out ?? join('runs', `study-temperature-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  outputDirectory('--out', out);
  let data = values.data;
  if (data === undefined) {
    data = join(out, 'clicks.tsv');
    if (!existsSync(data)) {
      process.stderr.write(`infobound: writing a synthetic click log to ${data}\n`);
      await writeSyntheticClickLog(data, { queries: 20000, sites: 2000, seed: 1 });
    }
  } else if (!existsSync(data)) {
    throw new UserError(`--data ${data}: no such file`);
  }
  const trueMi = (await readClickLogMeta(data))?.true_mi ?? null;
  const path = join(out, 'temperature.jsonl');
  writeFileSync(path, '');
  const results: TemperatureResult[] = [];
  for (const tau of STUDY_TEMPERATURES) {
    const config = defaultConfig();
    const learnable = tau === null;
    const label = learnable ? 'learnable' : String(tau);
    Object.assign(config, { data, kind: 'clicklog', run_dir: join(out, `tau-${label}`) });
    Object.assign(config.train, { steps });
    Object.assign(config.eval, { enabled: false });
    Object.assign(config.temperature, { value: tau ?? config.temperature.value, learnable });
    process.stderr.write(`infobound: study-temperature: τ = ${label}, ${steps} steps\n`);
    const s = await train(config, { warn: (m) => process.stderr.write(m.endsWith('\n') ? m : m + '\n') });
    const n = config.bank.size + 1;
    const r: TemperatureResult = {
      tau: tau ?? config.temperature.value,
      learnable,
      final_tau: s.temperature,
      infonce: s.bounds.infonce,
      nwj: s.bounds.nwj,
      dv: s.bounds.dv,
      ceiling: s.ceiling,
      temperature_cap: infonceTemperatureCap(n, s.temperature),
      true_mi: trueMi,
      steps,
      run_dir: s.run_dir,
    };
    results.push(r);
    appendFileSync(path, JSON.stringify(r) + '\n');
    if (values.json === true) process.stdout.write(JSON.stringify(r) + '\n');
  }
  if (values.json !== true) process.stdout.write(formatTable(results) + `written to ${path}\n`);
  return 0;
}

function formatTable(results: readonly TemperatureResult[]): string {
  const f = (x: number | null, w = 9) => (x === null ? 'n/a' : x.toFixed(3)).padStart(w);
  const lines = ['τ                final τ   InfoNCE       NWJ        DV   τ-cap  log(K+1)   true MI'];
  for (const r of results) {
    lines.push(
      `${(r.learnable ? `learnable (${r.tau})` : String(r.tau)).padEnd(16)} ${f(r.final_tau)} ${f(r.infonce)} ${f(r.nwj)} ${f(r.dv)} ${f(r.temperature_cap, 7)} ${f(r.ceiling)} ${f(r.true_mi)}`,
    );
  }
  return lines.join('\n') + '\n';
}
