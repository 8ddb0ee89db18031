import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../common/user-error.js';
import { auditCommits } from '../coordinator/commit-audit.js';
import { parseCommandLine } from './parse-flags.js';

export const AUDIT_USAGE = `usage: infobound audit RUN_DIR [--json]

Checks the run's commit trail (RUN_DIR/commits.jsonl): that the examples assigned to the committed
steps, after any restart's re-run steps, tile the data stream exactly once — no position skipped,
none trained twice — and so cover every complete epoch exactly once; on a prepared dataset, that
the shard ranges read every block's positions once per complete epoch and every shard once. Prints
what it found (--json: one object); exits 1 when the trail breaks exactly-once, naming where.`;

/** How many problems are printed before the rest are counted. */
const SHOWN = 20;

/** `infobound audit RUN_DIR`. */
export async function auditCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('audit', argv, { json: { type: 'boolean' } }, true);
  if (values.help) {
    process.stdout.write(AUDIT_USAGE + '\n');
    return 0;
  }
  if (positionals.length !== 1) throw new UserError(`audit: expected one RUN_DIR, got ${positionals.length} (see infobound audit --help)`);
  const path = join(positionals[0]!, 'commits.jsonl');
  if (!existsSync(path)) throw new UserError(`audit: ${path}: no such file (is ${positionals[0]} a run directory?)`);
  const report = auditCommits(readFileSync(path, 'utf8'));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return report.problems.length === 0 ? 0 : 1;
  }
  const [start, end] = report.positions;
  const lines = [`${path}: ${report.steps} committed steps over stream positions [${start}, ${end})`];
  for (const r of report.rollbacks) lines.push(`a restart committed again from step ${r.to} after step ${r.from}: the later commits count`);
  if (report.epoch_size !== null) {
    const complete = report.complete_epochs.length === 0 ? 'no complete epoch' : `complete epochs ${report.complete_epochs.join(', ')}`;
    const partial =
      report.partial_epoch === null ? '' : `; epoch ${report.partial_epoch.epoch}: ${report.partial_epoch.trained} of ${report.epoch_size} so far`;
    lines.push(`epoch size ${report.epoch_size}: ${complete}${partial}`);
  }
  if (report.shards !== null && report.shards.epochs > 0) {
    const { epochs, blocks, shards } = report.shards;
    lines.push(`shards: the ${epochs} complete epoch${epochs === 1 ? '' : 's'} read ${blocks} blocks of ${shards} shards, each block position once`);
  }
  if (report.problems.length === 0) {
    lines.push('exactly once: every position in the trail was trained once');
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  }
  lines.push(`NOT exactly once: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}`);
  for (const p of report.problems.slice(0, SHOWN)) lines.push(`  ${p}`);
  if (report.problems.length > SHOWN) lines.push(`  and ${report.problems.length - SHOWN} more`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 1;
}
