import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../common/user-error.js';
import { parseCommandLine } from './parse-flags.js';
import { buildReport } from './report/report-html.js';

export const REPORT_USAGE = `usage: infobound report RUN_DIR [--out FILE]

Writes one self-contained HTML page (no network: the plots are drawn by inline script) for a
directory of \`train\`, \`coordinator\`, \`study-temperature\` or \`bench-mi\`: the bounds vs the ceiling vs
the true MI over steps, loss, throughput and the step-time breakdown; the temperature study; the MI
staircase. --out defaults to RUN_DIR/report.html.`;

/** `infobound report RUN_DIR`. */
export async function reportCommand(argv: string[]): Promise<number> {
  const { values, positionals: dirs } = parseCommandLine('report', argv, { out: { type: 'string' } }, true);
  if (values.help) {
    process.stdout.write(REPORT_USAGE + '\n');
    return 0;
  }
  if (dirs.length !== 1) throw new UserError(`report: expected one RUN_DIR, got ${dirs.length}`);
  const dir = dirs[0]!;
  const { html, plots, skippedLines } = buildReport(dir);
  const out = values.out ?? join(dir, 'report.html');
  try {
    writeFileSync(out, html);
  } catch (err) {
    throw new UserError(`report: cannot write ${out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  process.stderr.write(`infobound: ${plots} plots${skippedLines > 0 ? `, ${skippedLines} unreadable lines skipped` : ''}\n`);
  process.stdout.write(out + '\n');
  return 0;
}
