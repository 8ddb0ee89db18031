import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { StepLine, SummaryLine } from '../../common/run-lines.js';
import { UserError } from '../../common/user-error.js';
import type { LevelResult, StaircasePoint } from '../../worker/mi-benchmark/mi-staircase.js';
import type { TemperatureResult } from '../command-study-temperature.js';
import { PLOT_SCRIPT } from './plot-script.js';

/** One line chart, drawn in the browser by plot-script.ts. */
export interface PlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: { name: string; points: [number, number][]; dashed?: boolean; markers?: boolean }[];
  /** Categorical x axis: [position, label] pairs. */
  xTicks?: [number, string][];
  /** Limits of the y axis: values beyond are drawn at the edge (an estimator that blew up stays readable). */
  yMin?: number;
  yMax?: number;
}

/** Lines of a JSONL file that parse as objects; the others are counted. */
function readJsonl(path: string): { rows: Record<string, unknown>[]; bad: number } {
  const rows: Record<string, unknown>[] = [];
  let bad = 0;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      const v = JSON.parse(line) as unknown;
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) rows.push(v as Record<string, unknown>);
      else bad++;
    } catch {
      bad++;
    }
  }
  return { rows, bad };
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const figure = (p: PlotSpec) => `<figure class="plot" data-plot="${escapeHtml(JSON.stringify(p))}"></figure>`;
const flat = (value: number, xs: number[]): [number, number][] =>
  xs.length === 0
    ? []
    : [
        [Math.min(...xs), value],
        [Math.max(...xs), value],
      ];
const num = (v: unknown, digits = 3) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : 'n/a');

/** The training section from a run directory's run.jsonl (one line per logged step per worker, then the summary). */
function trainingSection(rows: Record<string, unknown>[]): string {
  // A cluster logs one line per worker: the job's curves are rank 0's.
  const steps = rows.filter((r) => r.type === 'step' && (r.worker ?? 0) === 0) as unknown as StepLine[];
  const summary = rows.find((r) => r.type === 'summary') as SummaryLine | undefined;
  const x = steps.map((s) => s.step);
  const line = (name: string, f: (s: StepLine) => number, extra = {}) => ({ name, points: steps.map((s) => [s.step, f(s)] as [number, number]), ...extra });
  const trueMi = summary?.true_mi ?? null;
  const plots: PlotSpec[] = [
    {
      title: 'MI bounds vs ceiling vs true MI',
      xLabel: 'step',
      yLabel: 'nats',
      series: [
        line('InfoNCE', (s) => s.bounds.infonce, { width: 2 }),
        line('NWJ', (s) => s.bounds.nwj),
        line('DV', (s) => s.bounds.dv),
        line('ceiling log(K+1)', (s) => s.ceiling, { dashed: true }),
        ...(trueMi !== null ? [{ name: 'true MI', points: flat(trueMi, x), dashed: true }] : []),
      ],
    },
    { title: 'Loss', xLabel: 'step', yLabel: 'nats', series: [line('loss', (s) => s.loss)] },
    { title: 'Throughput', xLabel: 'step', yLabel: 'examples/s', series: [line('examples/s', (s) => s.examples_per_s)] },
    {
      title: 'Step time breakdown',
      xLabel: 'step',
      yLabel: 'ms',
      series: [
        line('data', (s) => s.step_ms.data),
        line('compute', (s) => s.step_ms.compute),
        line('all-reduce', (s) => s.step_ms.allreduce),
        line('bank wait', (s) => s.step_ms.bank_wait),
      ],
    },
  ];
  const facts: [string, string][] = summary
    ? [
        ['steps', String(summary.steps)],
        ['examples/s', num(summary.examples_per_s, 0)],
        ['InfoNCE / NWJ / DV (last quarter)', `${num(summary.bounds.infonce)} / ${num(summary.bounds.nwj)} / ${num(summary.bounds.dv)}`],
        ['ceiling log(K+1)', num(summary.ceiling)],
        ['true MI', num(summary.true_mi)],
        ...Object.entries(summary.eval ?? {}).map(([k, v]) => [k, num(v)] as [string, string]),
      ]
    : [['summary', 'none yet (the run is in progress or was stopped)']];
  return section('Training run', facts, plots);
}

/** The temperature study from temperature.jsonl, with each τ's InfoNCE curve when its run directory is there. */
function temperatureSection(dir: string, rows: Record<string, unknown>[]): string {
  const results = rows as unknown as TemperatureResult[];
  const xTicks = results.map((r, i) => [i, r.learnable ? `learnable→${r.final_tau.toFixed(3)}` : String(r.tau)] as [number, string]);
  const at = (f: (r: TemperatureResult) => number | null) => results.map((r, i) => [i, f(r) ?? Number.NaN] as [number, number]);
  const plots: PlotSpec[] = [
    {
      title: 'Final InfoNCE bound by temperature',
      xLabel: 'τ',
      yLabel: 'nats',
      xTicks,
      series: [
        { name: 'InfoNCE', points: at((r) => r.infonce), markers: true },
        { name: 'cap at τ', points: at((r) => r.temperature_cap), dashed: true, markers: true },
        { name: 'log(K+1)', points: at((r) => r.ceiling), dashed: true },
        { name: 'true MI', points: at((r) => r.true_mi), dashed: true },
      ],
    },
  ];
  const curves = results
    .map((r) => ({ r, path: join(dir, r.run_dir.split(/[\\/]/).at(-1) ?? '', 'run.jsonl') }))
    .filter(({ path }) => existsSync(path))
    .map(({ r, path }) => ({
      name: r.learnable ? 'learnable' : `τ = ${r.tau}`,
      points: readJsonl(path)
        .rows.filter((l) => l.type === 'step')
        .map((l) => [l.step as number, (l.bounds as { infonce: number }).infonce] as [number, number]),
    }));
  if (curves.length > 0) plots.push({ title: 'InfoNCE over training, by temperature', xLabel: 'step', yLabel: 'nats', series: curves });
  const facts = results.map(
    (r) =>
      [
        r.learnable ? `learnable (from ${r.tau})` : `τ = ${r.tau}`,
        `InfoNCE ${num(r.infonce)} · cap ${num(r.temperature_cap)} · log(K+1) ${num(r.ceiling)} · true MI ${num(r.true_mi)}`,
      ] as [string, string],
  );
  return section('Temperature study', facts, plots);
}

/** The MI staircase from bench-mi.jsonl: one chart per estimator, and means against the truth. */
function benchMiSection(rows: Record<string, unknown>[]): string {
  const levels = rows.filter((r) => r.type === 'level') as unknown as LevelResult[];
  const points = rows.filter((r) => r.type === 'point') as unknown as StaircasePoint[];
  const estimators = [...new Set(levels.map((l) => l.estimator))];
  const header = rows.find((r) => r.type === 'bench-mi') as { batch?: number; critic?: string; cubic?: boolean } | undefined;
  const batch = header?.batch ?? levels[0]?.batch ?? 0;
  // Estimates far outside [−2, 1.5 × the highest MI] (an NWJ or JSD critic whose exponentials blew up) are drawn at the edge.
  const yRange = { yMin: -2, yMax: 1.5 * Math.max(...levels.map((l) => l.true_mi), 1) };
  const plots: PlotSpec[] = estimators.map((e) => {
    const mine = points.filter((p) => p.estimator === e);
    const steps = mine.map((p) => p.step);
    return {
      title: `${e}: estimate over the MI staircase`,
      xLabel: 'step',
      yLabel: 'nats',
      ...yRange,
      series: [
        { name: `${e} estimate`, points: mine.map((p) => [p.step, p.estimate] as [number, number]) },
        { name: 'true MI', points: mine.map((p) => [p.step, p.true_mi] as [number, number]), dashed: true },
        ...(e === 'infonce' && batch > 0 ? [{ name: 'log(batch)', points: flat(Math.log(batch), steps), dashed: true }] : []),
      ],
    };
  });
  const truths = [...new Set(levels.map((l) => l.true_mi))];
  plots.push({
    title: 'Mean estimate at each level vs the true MI',
    xLabel: 'true MI (nats)',
    yLabel: 'estimate (nats)',
    ...yRange,
    series: [
      { name: 'true MI', points: truths.map((t) => [t, t] as [number, number]), dashed: true },
      ...estimators.map((e) => ({
        name: e,
        points: levels.filter((l) => l.estimator === e).map((l) => [l.true_mi, l.mean] as [number, number]),
        markers: true,
      })),
    ],
  });
  const facts = levels.map((l) => [`${l.estimator} at ${l.true_mi} nats`, `${num(l.mean)} ± ${num(l.std)}`] as [string, string]);
  return section(`MI benchmark (correlated Gaussians, ${header?.critic ?? 'separable'} critic${header?.cubic ? ', cubic' : ''}, batch ${batch})`, facts, plots);
}

function section(title: string, facts: [string, string][], plots: PlotSpec[]): string {
  const table = facts.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('');
  return `<section><h2>${escapeHtml(title)}</h2><table>${table}</table>${plots.map(figure).join('\n')}</section>`;
}

/**
 * The report of a directory: its training run (run.jsonl), temperature study (temperature.jsonl) and
 * MI benchmark (bench-mi.jsonl), whichever it holds, as one self-contained HTML page. A directory
 * with none of them, or that does not exist, is a {@link UserError}.
 */
export function buildReport(dir: string): { html: string; plots: number; skippedLines: number } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`report: ${dir} is not a directory`);
  const parts: string[] = [];
  let skipped = 0;
  const read = (name: string) => {
    const path = join(dir, name);
    if (!existsSync(path)) return undefined;
    const r = readJsonl(path);
    skipped += r.bad;
    return r.rows;
  };
  const run = read('run.jsonl');
  if (run !== undefined) parts.push(trainingSection(run));
  const temperature = read('temperature.jsonl');
  if (temperature !== undefined) parts.push(temperatureSection(dir, temperature));
  const benchMi = read('bench-mi.jsonl');
  if (benchMi !== undefined) parts.push(benchMiSection(benchMi));
  if (parts.length === 0) {
    const found = readdirSync(dir).slice(0, 5).join(', ');
    throw new UserError(`report: ${dir} holds no run.jsonl, temperature.jsonl or bench-mi.jsonl (it has: ${found || 'nothing'})`);
  }
  const body = parts.join('\n');
  const plots = (body.match(/class="plot"/g) ?? []).length;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Infobound report: ${escapeHtml(dir)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:980px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0 16px}th,td{padding:2px 10px;text-align:left;border-bottom:1px solid #eee}th{font-weight:600}
figure{margin:12px 0}svg{font-size:11px;background:#fff}.axes line{stroke:#888}.axes .grid{stroke:#eee}
.ptitle{font-size:13px;font-weight:600}.legend{font-size:11px}
</style></head>
<body><h1>Infobound report</h1><p>${escapeHtml(dir)} · written ${new Date().toISOString()}</p>
${body}
<script>${PLOT_SCRIPT}</script>
</body></html>
`;
  return { html, plots, skippedLines: skipped };
}
