import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../common/user-error.js';
import { TRIGRAM_SALT, WORD_SALT } from '../text/text-features.js';

/** Marks a prepared click-log dataset's manifest (bumped whenever the layout changes). */
export const DATASET_FORMAT = 'infobound-clicklog-dataset-v2';
/** The manifest's file name inside a dataset directory; a directory without it is not a dataset. */
export const MANIFEST_FILE = 'manifest.json';

/** Which featuriser made the shards' feature hashes: a dataset is refused by a trainer whose differs. */
export interface FeaturizerIdentity {
  type: 'hashed-text';
  hash: 'fnv1a32-salted-fmix32';
  word_salt: number;
  trigram_salt: number;
}

/** This code's featuriser (worker/text/text-features.ts). */
export function currentFeaturizer(): FeaturizerIdentity {
  return { type: 'hashed-text', hash: 'fnv1a32-salted-fmix32', word_salt: WORD_SALT, trigram_salt: TRIGRAM_SALT };
}

/** A shard as the manifest lists it. */
export interface ShardEntry {
  /** File name inside the dataset directory. */
  file: string;
  rows: number;
  /** Training examples it holds: the sum of its rows' clicks. */
  examples: number;
  bytes: number;
  sha256: string;
}

/** What `manifest.json` holds (field names as in the file). */
export interface DatasetManifest {
  format: typeof DATASET_FORMAT;
  featurizer: FeaturizerIdentity;
  /** Share of queries held out for evaluation (by a hash of the query text, as in training). */
  holdout: number;
  /** Largest click count a row keeps; larger ones were capped to it (and counted). */
  max_clicks: number;
  /** The input files, in the order they were read, with their sizes. */
  sources: { path: string; bytes: number }[];
  /** Non-empty lines read, rows kept, rows whose clicks were capped, and lines skipped by reason. */
  lines: number;
  rows: { train: number; held_out: number };
  capped_rows: number;
  skipped: Record<string, number>;
  /** Training examples in all shards: an epoch. */
  examples: number;
  /** The site vocabulary: `sites.tsv`, one `site<TAB>training clicks` per line, line i = site id i. */
  sites: { file: string; count: number; sha256: string };
  /** The sites' training clicks and name feature hashes, what a worker reads at start (worker/dataset/site-features-file.ts). */
  site_features: { file: string; bytes: number; sha256: string };
  shards: ShardEntry[];
  held_out: ShardEntry[];
  /** From a synthetic log's sidecar (gen-clicklog), when the only source has one. */
  true_mi: number | null;
  oracle_recall_at_10: number | null;
}

/** Whether `dir` holds a dataset manifest (a prepared dataset, complete: the manifest is written last). */
export async function isDatasetDirectory(dir: string): Promise<boolean> {
  try {
    await readFile(join(dir, MANIFEST_FILE));
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads and checks the manifest of the dataset in `dir`: a one-line UserError naming the file when
 * it is missing, not this format, made by another featuriser, or inconsistent.
 */
export async function readManifest(dir: string): Promise<DatasetManifest> {
  const path = join(dir, MANIFEST_FILE);
  const fail = (problem: string) => new UserError(`dataset ${path}: ${problem}`);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw fail(e.code === 'ENOENT' ? 'no manifest: not a prepared dataset (infobound prepare makes one)' : `unreadable (${e.code ?? e.message})`);
  }
  const m = raw as DatasetManifest;
  if (typeof m !== 'object' || m === null || m.format !== DATASET_FORMAT) {
    const older = typeof m?.format === 'string' && m.format.startsWith('infobound-clicklog-dataset-');
    throw fail(older ? `of format ${m.format}, and this trainer reads ${DATASET_FORMAT}: prepare it again` : `not a dataset of format ${DATASET_FORMAT}`);
  }
  const mine = currentFeaturizer();
  const theirs = m.featurizer ?? {};
  for (const key of Object.keys(mine) as (keyof FeaturizerIdentity)[]) {
    if (theirs[key] !== mine[key]) {
      throw fail(`prepared with another featuriser (${key} ${JSON.stringify(theirs[key])}, this trainer's is ${JSON.stringify(mine[key])}): prepare it again`);
    }
  }
  const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  const shardOk = (s: ShardEntry) =>
    typeof s?.file === 'string' && /^[\w.-]+$/.test(s.file) && count(s.rows) && count(s.examples) && typeof s.sha256 === 'string';
  if (!Array.isArray(m.shards) || !Array.isArray(m.held_out) || ![...m.shards, ...m.held_out].every(shardOk)) throw fail('corrupt shard list');
  if (m.shards.length === 0) throw fail('holds no training shard');
  if (!count(m.examples) || m.examples !== m.shards.reduce((n, s) => n + s.examples, 0)) throw fail('examples do not add up over the shards');
  if (typeof m.sites?.file !== 'string' || !count(m.sites.count) || m.sites.count < 1) throw fail('corrupt site vocabulary entry');
  if (typeof m.site_features?.file !== 'string' || !/^[\w.-]+$/.test(m.site_features.file) || typeof m.site_features.sha256 !== 'string') {
    throw fail('corrupt site features entry');
  }
  return m;
}
