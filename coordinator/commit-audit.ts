import type { ShardRange } from '../worker/dataset/sharded-example-order.js';

/** One line of a run directory's commits.jsonl, as coordinator/job-log.ts writes it. */
interface CommitLine {
  step: number;
  epoch: number;
  epoch_size?: number;
  cursor: number;
  /** Each member's assigned examples: [start position, count]. */
  ranges: [number, number][];
  /** On a prepared dataset: the shard blocks each member's range read (worker/dataset/sharded-example-order.ts). */
  shard_ranges?: ShardRange[][];
}

/** A restart that committed steps again from an earlier checkpoint: the later commits are the ones that count. */
export interface Rollback {
  /** The last step committed before it. */
  from: number;
  /** The step committed again. */
  to: number;
}

/** What {@link auditCommits} found. The field names are an interface (`infobound audit --json`). */
export interface AuditReport {
  /** Steps in the effective history (after rollbacks). */
  steps: number;
  /** The first and last stream positions the trail covers: [start, end). */
  positions: [number, number];
  epoch_size: number | null;
  /** Epochs the trail covers entirely, each exactly once when there are no problems. */
  complete_epochs: number[];
  /** The epoch in progress at the end and how many of its positions are trained, if any. */
  partial_epoch: { epoch: number; trained: number } | null;
  rollbacks: Rollback[];
  /**
   * On a prepared dataset, what the shard ranges of the complete epochs tiled: every block's positions
   * once, and every shard in one block; null when the trail has no shard ranges.
   */
  shards: { epochs: number; blocks: number; shards: number } | null;
  /** Everything that breaks exactly-once: gaps, overlaps, inconsistent lines. Empty for a sound trail. */
  problems: string[];
}

/**
 * Checks that a commit trail trains every stream position exactly once: the steps' assigned ranges,
 * in commit order after restarts' rollbacks, must tile the stream from its first position without a
 * gap or an overlap, every line's cursor must be where its ranges end, and its epoch the cursor's.
 * Epoch e is the positions [e·N, (e+1)·N), so a tiled stream covers each complete epoch exactly once.
 */
export function auditCommits(text: string): AuditReport {
  const problems: string[] = [];
  const effective: CommitLine[] = [];
  const rollbacks: Rollback[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    const line = parseLine(raw);
    if (line === null) {
      problems.push(`line ${i + 1}: not a commit line`);
      return;
    }
    const last = effective.at(-1);
    if (last !== undefined && line.step <= last.step) {
      rollbacks.push({ from: last.step, to: line.step });
      while (effective.length > 0 && effective.at(-1)!.step >= line.step) effective.pop();
    }
    const before = effective.at(-1);
    if (before !== undefined && line.step !== before.step + 1) {
      const missing = line.step === before.step + 2 ? `step ${before.step + 1} has` : `steps ${before.step + 1}–${line.step - 1} have`;
      problems.push(`step ${line.step} follows step ${before.step}: ${missing} no commit`);
    }
    effective.push(line);
  });

  const sizes = new Set(effective.map((l) => l.epoch_size).filter((n) => n !== undefined));
  if (sizes.size > 1) problems.push(`the lines disagree on the epoch size: ${[...sizes].join(', ')}`);
  const epochSize = sizes.size === 1 ? [...sizes][0]! : null;
  const start = effective[0]?.ranges.reduce((m, [s]) => Math.min(m, s), Number.POSITIVE_INFINITY) ?? 0;
  let end = start;
  for (const line of effective) {
    for (const [s, count] of [...line.ranges].sort((a, b) => a[0] - b[0])) {
      if (s > end) problems.push(`step ${line.step}: positions [${end}, ${s}) were never trained`);
      if (s < end) problems.push(`step ${line.step}: positions [${s}, ${Math.min(end, s + count)}) were trained twice`);
      end = Math.max(end, s + count);
    }
    if (line.cursor !== end) problems.push(`step ${line.step}: its cursor is ${line.cursor}, but its ranges end at ${end}`);
    if (epochSize !== null && line.epoch !== Math.floor(line.cursor / epochSize)) {
      problems.push(`step ${line.step}: epoch ${line.epoch}, but cursor ${line.cursor} is in epoch ${Math.floor(line.cursor / epochSize)}`);
    }
  }
  const complete: number[] = [];
  let partial: AuditReport['partial_epoch'] = null;
  if (epochSize !== null && effective.length > 0) {
    for (let e = Math.ceil(start / epochSize); (e + 1) * epochSize <= end; e++) complete.push(e);
    const current = Math.floor(end / epochSize);
    if (end % epochSize !== 0) partial = { epoch: current, trained: end - Math.max(start, current * epochSize) };
  }
  const shards = effective.some((l) => l.shard_ranges !== undefined) ? auditShardRanges(effective, new Set(complete), epochSize, problems) : null;
  return {
    steps: effective.length,
    positions: [start, end],
    epoch_size: epochSize,
    complete_epochs: complete,
    partial_epoch: partial,
    rollbacks,
    shards,
    problems,
  };
}

/**
 * Checks the shard side of a trail: each member's shard ranges hold as many positions as its range;
 * within an epoch no block position is read twice; a complete epoch reads every position of each of
 * its blocks once, and its blocks hold each shard once. So every shard's examples were read once.
 */
function auditShardRanges(lines: CommitLine[], complete: Set<number>, epochSize: number | null, problems: string[]): AuditReport['shards'] {
  // Per epoch, per block (its shards), the ranges read.
  const epochs = new Map<number, Map<string, { examples: number; shards: number[]; ranges: [number, number][] }>>();
  for (const line of lines) {
    if (line.shard_ranges === undefined || line.shard_ranges.length !== line.ranges.length) {
      problems.push(`step ${line.step}: shard ranges missing for some members`);
      continue;
    }
    line.shard_ranges.forEach((pieces, member) => {
      const read = pieces.reduce((n, r) => n + r.range[1] - r.range[0], 0);
      if (read !== line.ranges[member]![1])
        problems.push(`step ${line.step}: member ${member}'s shard ranges hold ${read} positions, its range ${line.ranges[member]![1]}`);
      for (const r of pieces) {
        const blocks = epochs.get(r.epoch) ?? new Map();
        epochs.set(r.epoch, blocks);
        const key = r.shards.join(',');
        const block = blocks.get(key) ?? { examples: r.examples, shards: r.shards, ranges: [] };
        blocks.set(key, block);
        block.ranges.push(r.range);
      }
    });
  }
  let tiled = { epochs: 0, blocks: 0, shards: 0 };
  for (const [epoch, blocks] of [...epochs].sort((a, b) => a[0] - b[0])) {
    const seen = new Set<number>();
    for (const [key, block] of blocks) {
      let end = 0;
      for (const [from, to] of block.ranges.sort((a, b) => a[0] - b[0])) {
        if (from < end) problems.push(`epoch ${epoch}: block of shards ${key}: positions [${from}, ${Math.min(end, to)}) were read twice`);
        else if (from > end && complete.has(epoch)) problems.push(`epoch ${epoch}: block of shards ${key}: positions [${end}, ${from}) were never read`);
        end = Math.max(end, to);
      }
      if (complete.has(epoch) && end !== block.examples)
        problems.push(`epoch ${epoch}: block of shards ${key}: read up to ${end} of its ${block.examples} examples`);
      for (const shard of block.shards) {
        if (seen.has(shard)) problems.push(`epoch ${epoch}: shard ${shard} is in two blocks`);
        seen.add(shard);
      }
    }
    const examples = [...blocks.values()].reduce((n, b) => n + b.examples, 0);
    if (complete.has(epoch) && examples !== epochSize) problems.push(`epoch ${epoch}: its blocks hold ${examples} examples, the epoch ${epochSize}`);
    if (complete.has(epoch)) tiled = { epochs: tiled.epochs + 1, blocks: tiled.blocks + blocks.size, shards: tiled.shards + seen.size };
  }
  return tiled;
}

/** A commit line, or null when the text is not one. */
function parseLine(raw: string): CommitLine | null {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return null;
  }
  const l = v as Partial<CommitLine>;
  const count = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (typeof v !== 'object' || v === null || !count(l.step) || !count(l.epoch) || !count(l.cursor) || !Array.isArray(l.ranges)) return null;
  if (l.epoch_size !== undefined && !(count(l.epoch_size) && l.epoch_size > 0)) return null;
  if (!l.ranges.every((r) => Array.isArray(r) && r.length === 2 && count(r[0]) && count(r[1]))) return null;
  const shardRange = (r: Partial<ShardRange>) =>
    typeof r === 'object' &&
    r !== null &&
    count(r.epoch) &&
    count(r.examples) &&
    Array.isArray(r.shards) &&
    r.shards.every(count) &&
    Array.isArray(r.range) &&
    r.range.length === 2 &&
    count(r.range[0]) &&
    count(r.range[1]) &&
    r.range[0] <= r.range[1];
  if (l.shard_ranges !== undefined && !(Array.isArray(l.shard_ranges) && l.shard_ranges.every((m) => Array.isArray(m) && m.every(shardRange)))) return null;
  return l as CommitLine;
}
