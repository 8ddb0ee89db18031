import type { StepLine, SummaryLine } from '../common/run-lines.js';

/** A logged step: its JSON line on stdout with --json, else one short line on stderr. */
export function printStepLine(line: StepLine, json: boolean): void {
  if (json) process.stdout.write(JSON.stringify(line) + '\n');
  else
    process.stderr.write(
      `step ${line.step} worker ${line.worker}: loss ${line.loss.toFixed(4)} infonce ${line.bounds.infonce.toFixed(3)} / ${line.ceiling.toFixed(3)}\n`,
    );
}

/** The human-readable end of a run: the bounds beside their ceiling and the true MI, then the evaluation. */
export function formatSummary(s: SummaryLine): string {
  const f = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(4));
  const lines = [
    `trained ${s.steps} steps (${s.examples} examples, ${s.seconds.toFixed(1)} s, ${s.examples_per_s.toFixed(0)} examples/s)`,
    `MI bounds (nats, mean of the last quarter of logged steps): InfoNCE ${f(s.bounds.infonce)}  NWJ ${f(s.bounds.nwj)}  DV ${f(s.bounds.dv)}  JSD ${f(s.bounds.jsd)}`,
    `ceiling log(K+1) ${f(s.ceiling)}   true MI ${f(s.true_mi)}   temperature ${f(s.temperature)}`,
    `eval: ${Object.entries(s.eval)
      .map(([k, v]) => `${k} ${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : v}`)
      .join('  ')}${evaluationCost(s)}`,
  ];
  const skipped = Object.entries(s.skipped_inputs);
  if (skipped.length > 0) lines.push(`skipped inputs: ${skipped.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  lines.push(`checkpoint ${s.checkpoint}`);
  return lines.join('\n') + '\n';
}

/** What the evaluation cost, and over how many sites when they were sampled. */
function evaluationCost(s: SummaryLine): string {
  if (s.eval_seconds === undefined) return '';
  const shared = (s.eval_members ?? 1) > 1 ? `, shared by ${s.eval_members} members` : '';
  const sampled = typeof s.eval.sampled_sites === 'number' ? `, ranked against a sample of ${s.eval.sampled_sites} of ${s.eval.sites} sites` : '';
  return `\n  (evaluated in ${s.eval_seconds.toFixed(1)} s${shared}${sampled})`;
}
