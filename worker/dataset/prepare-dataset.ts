import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { readClickLogMeta } from '../../common/synthetic-clicklog.js';
import { syncDirectory } from '../../common/sync-directory.js';
import { UserError } from '../../common/user-error.js';
import { CLICKLOG_SKIP_REASONS, forEachClickRow, ownCopy, type ReadClickLogOptions } from '../data/clicklog-reader.js';
import { heldOutBelow, queryHashOf } from '../data/holdout-split.js';
import { textFeatureHashes } from '../text/text-features.js';
import { currentFeaturizer, DATASET_FORMAT, MANIFEST_FILE, readManifest, type DatasetManifest, type ShardEntry } from './dataset-manifest.js';
import { encodeShard, shardBytes } from './shard-file.js';
import { sha256Of } from './checked-file.js';
import { encodeSiteFeatures } from './site-features-file.js';

/** More distinct sites than one Map holds (2^24) is refused with a clear line, not a RangeError. */
const MAX_SITES = 2 ** 24;
/** The site vocabulary's clicks and feature hashes (worker/dataset/site-features-file.ts). */
const SITE_FEATURES_FILE = 'sites.ibsites';

/** Options of {@link prepareDataset}. */
export interface PrepareOptions {
  /** The reader's options (format, line limit, click cap, warnings). */
  read: ReadClickLogOptions;
  /** Share of queries held out for evaluation. */
  holdout: number;
  /** Bytes a shard is cut at. @default 64 MiB */
  shardBytes?: number;
  /** Called about once a second with how far the pass is. */
  progress?: (p: PrepareProgress) => void;
}

/** How far a prepare is. */
export interface PrepareProgress {
  rows: number;
  /** Bytes of the input files read (compressed bytes for gzip) and their total. */
  bytes: number;
  totalBytes: number;
  seconds: number;
}

/** What {@link prepareDataset} did: the manifest, and whether an identical dataset was already there. */
export interface PrepareResult {
  manifest: DatasetManifest;
  alreadyPrepared: boolean;
}

/**
 * The input files of `inputs`: files as given, a directory's regular files (sorted; hidden files and
 * `.meta.json` sidecars left out), and `*` / `?` patterns in a file name. A name matching nothing is
 * a one-line UserError.
 */
export async function expandInputs(inputs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const input of inputs) {
    const name = basename(input);
    if (/[*?]/.test(name)) {
      const pattern = new RegExp(
        `^${name
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')
          .replace(/\?/g, '.')}$`,
      );
      const dir = dirname(input);
      const matches = (await listFiles(dir)).filter((f) => pattern.test(f));
      if (matches.length === 0) throw new UserError(`prepare: ${input} matches no file`);
      out.push(...matches.map((f) => join(dir, f)));
      continue;
    }
    let kind: Stats;
    try {
      kind = await stat(input);
    } catch {
      throw new UserError(`prepare: ${input}: no such file or directory`);
    }
    if (kind.isDirectory()) {
      const files = await listFiles(input);
      if (files.length === 0) throw new UserError(`prepare: directory ${input} holds no click-log file`);
      out.push(...files.map((f) => join(input, f)));
    } else out.push(input);
  }
  return out;
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => {
    throw new UserError(`prepare: cannot list ${dir}`);
  });
  return entries
    .filter((e) => e.isFile() && !e.name.startsWith('.') && !e.name.endsWith('.meta.json'))
    .map((e) => e.name)
    .sort();
}

/** Rows of one shard being filled, in growable columns. */
class ShardBuilder {
  rows = 0;
  features = 0;
  examples = 0;
  private site = new Int32Array(1024);
  private clicks = new Int32Array(1024);
  private queryKey = new Uint32Array(1024);
  private offsets = new Uint32Array(1025);
  private hashes = new Uint32Array(8192);

  get bytes(): number {
    return shardBytes(this.rows, this.features);
  }

  add(site: number, clicks: number, queryKey: number, features: readonly number[]): void {
    if (this.rows + 1 >= this.site.length) {
      this.site = grow(this.site, this.rows * 2);
      this.clicks = grow(this.clicks, this.rows * 2);
      this.queryKey = grow(this.queryKey, this.rows * 2);
      this.offsets = grow(this.offsets, this.rows * 2 + 1);
    }
    if (this.features + features.length > this.hashes.length)
      this.hashes = grow(this.hashes, Math.max(this.hashes.length * 2, this.features + features.length));
    this.site[this.rows] = site;
    this.clicks[this.rows] = clicks;
    this.queryKey[this.rows] = queryKey;
    this.hashes.set(features, this.features);
    this.features += features.length;
    this.rows++;
    this.offsets[this.rows] = this.features;
    this.examples += clicks;
  }

  /** Writes the shard as `dir/file` and returns its manifest entry; the builder is empty again at once (before the write ends). */
  flush(dir: string, file: string): Promise<ShardEntry> {
    const bytes = encodeShard({
      site: this.site.subarray(0, this.rows),
      clicks: this.clicks.subarray(0, this.rows),
      queryKey: this.queryKey.subarray(0, this.rows),
      featureOffsets: this.offsets.subarray(0, this.rows + 1),
      featureHashes: this.hashes.subarray(0, this.features),
    });
    const entry = { file, rows: this.rows, examples: this.examples, bytes: bytes.length, sha256: sha256Of(bytes) };
    this.rows = 0;
    this.features = 0;
    this.examples = 0;
    return writeFile(join(dir, file), bytes).then(() => entry);
  }
}

function grow<T extends Int32Array | Uint32Array>(a: T, length: number): T {
  const b = new (a.constructor as new (n: number) => T)(length);
  b.set(a);
  return b;
}

/**
 * Prepares click logs into the dataset directory `out` in one streaming pass: rows featurised (the
 * featuriser's 32-bit hashes), split into training and held-out shards by a hash of the query,
 * sites interned (the only thing held whole: the vocabulary and its click counts), and a manifest
 * with counts and SHA-256s written last. The work happens in `out.partial-PID`, renamed to `out`
 * once complete, so an interrupted prepare never leaves a directory that looks like a dataset. An
 * `out` that already holds the same preparation of the same inputs is kept (idempotent); any other
 * `out` is refused.
 */
export async function prepareDataset(inputs: readonly string[], out: string, o: PrepareOptions): Promise<PrepareResult> {
  const files = await expandInputs(inputs);
  const sources = await Promise.all(files.map(async (path) => ({ path, bytes: (await stat(path)).size })));
  const existing = await existingDataset(out);
  if (existing !== null) {
    if (sameInputs(existing, sources, o)) return { manifest: existing, alreadyPrepared: true };
    throw new UserError(`prepare: ${out} already holds a dataset of other inputs or settings: remove it or choose another --out`);
  }
  await removePartials(out);
  const work = `${out}${partialSuffix(process.pid)}-${randomBytes(4).toString('hex')}`;
  await mkdir(work, { recursive: true });
  try {
    const manifest = await writeShards(files, sources, work, o);
    await writeFile(join(work, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    await syncDirectory(work);
    try {
      await rename(work, out);
    } catch (err) {
      // Another process (workers sharing a run directory) prepared the same inputs first: theirs stands.
      const code = (err as NodeJS.ErrnoException).code;
      const theirs = code === 'ENOTEMPTY' || code === 'EEXIST' ? await existingDataset(out) : null;
      if (theirs === null || !sameInputs(theirs, sources, o)) throw err;
      await rm(work, { recursive: true, force: true });
      return { manifest: theirs, alreadyPrepared: true };
    }
    await syncDirectory(dirname(out));
    return { manifest, alreadyPrepared: false };
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    throw err;
  }
}

/** How process `pid`'s work directories beside `--out` start: the host named, since a run directory may be shared. */
function partialSuffix(pid: number): string {
  return `.partial-${hostname()}-${pid}`;
}

async function writeShards(files: string[], sources: DatasetManifest['sources'], work: string, o: PrepareOptions): Promise<DatasetManifest> {
  const cut = o.shardBytes ?? 64 * 2 ** 20;
  const siteIds = new Map<string, number>();
  const siteNames: string[] = [];
  let siteClicks: Float64Array = new Float64Array(1024);
  const train = new ShardBuilder();
  const held = new ShardBuilder();
  const shards: ShardEntry[] = [];
  const heldOut: ShardEntry[] = [];
  const skipped: Record<string, number> = Object.fromEntries(CLICKLOG_SKIP_REASONS.map((r) => [r, 0]));
  let lines = 0;
  let capped = 0;
  let rows = 0;
  let bytes = 0;
  const totalBytes = sources.reduce((n, s) => n + s.bytes, 0);
  const holdoutBelow = heldOutBelow(o.holdout);
  const started = performance.now();
  let reported = started;
  // Shards are written between files' rows: the reader's callback is synchronous, so full shards wait here.
  const pending: Promise<void>[] = [];

  for (const path of files) {
    const counts = await forEachClickRow(
      path,
      {
        ...o.read,
        onBytes: (n) => {
          bytes += n;
        },
      },
      (query, site, clicks) => {
        let id = siteIds.get(site);
        if (id === undefined) {
          if (siteNames.length >= MAX_SITES) throw new UserError(`prepare: more than ${MAX_SITES} distinct sites`);
          id = siteNames.length;
          const own = ownCopy(site);
          siteIds.set(own, id);
          siteNames.push(own);
          if (id >= siteClicks.length) siteClicks = growFloat(siteClicks, id * 2);
        }
        // One hash of the query: its held-out side and, as it is equal for equal queries, its key.
        const queryHash = queryHashOf(query);
        const isHeld = queryHash < holdoutBelow;
        const into = isHeld ? held : train;
        if (!isHeld) siteClicks[id]! += clicks;
        into.add(id, clicks, queryHash, textFeatureHashes(query));
        rows++;
        if (into.bytes >= cut) pending.push(flushInto(into, work, isHeld ? heldOut : shards, isHeld ? 'held-out' : 'train'));
        if (o.progress && (rows & 4095) === 0) {
          const now = performance.now();
          if (now - reported >= 1000) {
            reported = now;
            o.progress({ rows, bytes, totalBytes, seconds: (now - started) / 1000 });
          }
        }
      },
    );
    lines += counts.lines;
    capped += counts.capped;
    for (const [reason, n] of Object.entries(counts.skipped)) skipped[reason] = (skipped[reason] ?? 0) + n;
  }
  await Promise.all(pending);
  if (train.rows > 0 || shards.length === 0) shards.push(await train.flush(work, shardName('train', shards.length)));
  if (held.rows > 0) heldOut.push(await held.flush(work, shardName('held-out', heldOut.length)));
  o.progress?.({ rows, bytes, totalBytes, seconds: (performance.now() - started) / 1000 });
  const examples = shards.reduce((n, s) => n + s.examples, 0);
  if (examples === 0) throw new UserError(`prepare: no training clicks left after holding out ${o.holdout} of the queries`);

  const sitesText = siteNames.map((name, i) => `${name}\t${siteClicks[i]}\n`).join('');
  await writeFile(join(work, 'sites.tsv'), sitesText);
  const siteFeatures = encodeSiteFeatures(siteNames, siteClicks);
  await writeFile(join(work, SITE_FEATURES_FILE), siteFeatures);
  const meta = files.length === 1 ? await readClickLogMeta(files[0]!) : null;
  return {
    format: DATASET_FORMAT,
    featurizer: currentFeaturizer(),
    holdout: o.holdout,
    max_clicks: o.read.maxClicks ?? 0,
    sources,
    lines,
    rows: { train: shards.reduce((n, s) => n + s.rows, 0), held_out: heldOut.reduce((n, s) => n + s.rows, 0) },
    capped_rows: capped,
    skipped: Object.fromEntries(Object.entries(skipped).filter(([, n]) => n > 0)),
    examples,
    sites: { file: 'sites.tsv', count: siteNames.length, sha256: sha256Of(sitesText) },
    site_features: { file: SITE_FEATURES_FILE, bytes: siteFeatures.length, sha256: sha256Of(siteFeatures) },
    shards,
    held_out: heldOut,
    true_mi: meta?.true_mi ?? null,
    oracle_recall_at_10: meta?.oracle_recall_at_10 ?? null,
  };
}

/** Flushes a full builder as the next shard of its list (names taken now, so the order is the rows'). */
function flushInto(builder: ShardBuilder, work: string, list: ShardEntry[], kind: string): Promise<void> {
  const index = list.length;
  list.push(undefined as unknown as ShardEntry);
  return builder.flush(work, shardName(kind, index)).then((entry) => {
    list[index] = entry;
  });
}

function shardName(kind: string, index: number): string {
  return `${kind}-${String(index).padStart(5, '0')}.ibshard`;
}

function growFloat(a: Float64Array, length: number): Float64Array {
  const b = new Float64Array(length);
  b.set(a);
  return b;
}

/** The manifest of a complete dataset at `out`, or null when there is none. */
async function existingDataset(out: string): Promise<DatasetManifest | null> {
  try {
    await stat(join(out, MANIFEST_FILE));
  } catch {
    try {
      await stat(out);
    } catch {
      return null;
    }
    throw new UserError(`prepare: ${out} exists and is not a dataset: remove it or choose another --out`);
  }
  return readManifest(out);
}

function sameInputs(m: DatasetManifest, sources: DatasetManifest['sources'], o: PrepareOptions): boolean {
  return (
    m.holdout === o.holdout &&
    m.max_clicks === (o.read.maxClicks ?? 0) &&
    m.sources.length === sources.length &&
    m.sources.every((s, i) => s.path === sources[i]!.path && s.bytes === sources[i]!.bytes)
  );
}

/**
 * Leftovers of interrupted prepares of `out` on this host: work directories whose process is gone. A
 * live one is another process preparing the same dataset now, and another host's is that host's.
 */
async function removePartials(out: string): Promise<void> {
  const dir = dirname(out);
  const prefix = `${basename(out)}${partialSuffix(0).replace(/0$/, '')}`;
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const e of entries) {
    if (!e.startsWith(prefix)) continue;
    const pid = Number(e.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) continue;
    await rm(join(dir, e), { recursive: true, force: true });
  }
}

/** Whether process `pid` of this host is running (signal 0 only checks). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
