import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../common/user-error.js';
import { readManifest, type DatasetManifest, type ShardEntry } from './dataset-manifest.js';
import { readShard, type ShardRows } from './shard-file.js';

/**
 * A prepared click-log dataset, opened: its manifest and site vocabulary in memory, its shards read
 * on demand (each checked against the manifest's SHA-256 when read) and a few kept, so a reader's
 * memory follows the shards it is using, not the dataset's size.
 */
export class PreparedDataset {
  private readonly cache = new Map<string, Promise<ShardRows>>();

  private constructor(
    readonly dir: string,
    readonly manifest: DatasetManifest,
    /** Site names; the index is the site id. */
    readonly sites: string[],
    /** Training clicks of each site (the logQ frequencies). */
    readonly siteClicks: Float64Array,
    /** Shards kept in memory at once. */
    private readonly keep: number,
  ) {}

  /** Opens the dataset in `dir`, keeping up to `keep` shards in memory (default 4). */
  static async open(dir: string, keep = 4): Promise<PreparedDataset> {
    const manifest = await readManifest(dir);
    const { names, clicks } = await readSites(dir, manifest);
    return new PreparedDataset(dir, manifest, names, clicks, keep);
  }

  /** Training shard `i`'s rows (site ids checked against the vocabulary). */
  trainShard(i: number): Promise<ShardRows> {
    return this.load(this.manifest.shards[i]!);
  }

  /** Held-out shard `i`'s rows. */
  heldOutShard(i: number): Promise<ShardRows> {
    return this.load(this.manifest.held_out[i]!);
  }

  private load(entry: ShardEntry): Promise<ShardRows> {
    const hit = this.cache.get(entry.file);
    if (hit !== undefined) {
      // Most recently used last.
      this.cache.delete(entry.file);
      this.cache.set(entry.file, hit);
      return hit;
    }
    const path = join(this.dir, entry.file);
    const loading = readShard(path, entry).then((rows) => {
      for (const s of rows.site)
        if (s < 0 || s >= this.sites.length) throw new UserError(`dataset shard ${path}: site id ${s} outside the vocabulary of ${this.sites.length}`);
      return rows;
    });
    this.cache.set(entry.file, loading);
    loading.catch(() => this.cache.delete(entry.file));
    while (this.cache.size > this.keep) this.cache.delete(this.cache.keys().next().value!);
    return loading;
  }
}

/** The site vocabulary of a dataset: names and training clicks, checked against the manifest's SHA-256. */
async function readSites(dir: string, m: DatasetManifest): Promise<{ names: string[]; clicks: Float64Array }> {
  const path = join(dir, m.sites.file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UserError(`dataset ${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (createHash('sha256').update(text).digest('hex') !== m.sites.sha256) throw new UserError(`dataset ${path}: corrupt (its SHA-256 is not the manifest's)`);
  const names: string[] = [];
  const clicks = new Float64Array(m.sites.count);
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const tab = line.lastIndexOf('\t');
    if (names.length < clicks.length) clicks[names.length] = Number(line.slice(tab + 1));
    names.push(line.slice(0, tab));
  }
  if (names.length !== m.sites.count) throw new UserError(`dataset ${path}: ${names.length} sites, the manifest says ${m.sites.count}`);
  return { names, clicks };
}
