/**
 * The data plan: which examples each rank reads at each step. The job reads one stream of positions
 * 0, 1, 2, …; position p is example offset p mod N of epoch floor(p / N), where N is the epoch size
 * and each epoch is a seeded permutation of the N examples (worker/train/epoch-stream.ts). A step
 * hands out the next world·batch positions after the committed cursor, `batch` to each rank in rank
 * order, and the cursor moves only when the step commits. So a step that is re-planned after a
 * generation change starts from the same cursor: no position is lost or read twice, whatever the
 * world size, and an epoch is exactly positions [e·N, (e+1)·N).
 */
import type { Split__Output } from '../proto/generated/infobound/v1/Split.js';

/** The positions rank `rank` reads in the step that starts at stream position `cursor`. */
export function splitOf(cursor: number, rank: number, batch: number): Split__Output {
  return { start: cursor + rank * batch, count: batch };
}

/** Positions one step of `world` ranks consumes: the cursor's advance when it commits. */
export function stepExamples(world: number, batch: number): number {
  return world * batch;
}

/** The epoch a stream position belongs to (epochs counted from 0). */
export function epochOf(position: number, epochSize: number): number {
  return Math.floor(position / epochSize);
}

/** A run of consecutive examples of one epoch's permutation. */
export interface EpochRange {
  /** Epoch (from 0) whose permutation the offsets index. */
  epoch: number;
  /** First offset in that epoch, in [0, epoch size). */
  offset: number;
  /** Examples, at most up to the epoch's end. */
  count: number;
}

/**
 * A split cut at epoch boundaries: what a worker reads, as runs of each epoch's permutation. A split
 * crosses at most a few boundaries (one unless the batch exceeds the epoch); the loop is bounded by
 * `count / epochSize + 2` iterations.
 */
export function epochRanges(split: Split__Output, epochSize: number): EpochRange[] {
  const ranges: EpochRange[] = [];
  let position = split.start;
  const end = split.start + split.count;
  while (position < end) {
    const epoch = epochOf(position, epochSize);
    const offset = position - epoch * epochSize;
    const count = Math.min(end - position, epochSize - offset);
    ranges.push({ epoch, offset, count });
    position += count;
  }
  return ranges;
}
