import { join } from 'node:path';
import { UserError } from '../../common/user-error.js';
import { readChecked } from './checked-file.js';
import { readManifest, type DatasetManifest, type ShardEntry } from './dataset-manifest.js';
import { readShard, type ShardRows } from './shard-file.js';
import { readSiteFeatures, type SiteFeatures } from './site-features-file.js';

/**
 * A prepared click-log dataset, opened: its manifest and the sites' clicks and feature hashes in
 * memory, the site names read when first asked for, its shards read on demand (each checked against
 * the manifest's SHA-256 when read) and a few kept, so a reader's memory follows the shards it is
 * using, not the dataset's size.
 */
export class PreparedDataset {
  private readonly cache = new Map<string, Promise<ShardRows>>();
  private names?: Promise<string[]>;

  private constructor(
    readonly dir: string,
    readonly manifest: DatasetManifest,
    /** Each site's training clicks (the logQ frequencies) and feature hashes; the index is the site id. */
    readonly sites: SiteFeatures,
    /** Shards kept in memory at once. */
    private readonly keep: number,
  ) {}

  /** Opens the dataset in `dir`, keeping up to `keep` shards in memory (default 4). */
  static async open(dir: string, keep = 4): Promise<PreparedDataset> {
    const manifest = await readManifest(dir);
    const sites = await readSiteFeatures(join(dir, manifest.site_features.file), { sha256: manifest.site_features.sha256, count: manifest.sites.count });
    return new PreparedDataset(dir, manifest, sites, keep);
  }

  /** Site names; the index is the site id (read from sites.tsv once, when first asked for). */
  siteNames(): Promise<string[]> {
    this.names ??= readSiteNames(this.dir, this.manifest);
    return this.names;
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
    const count = this.manifest.sites.count;
    const loading = readShard(path, entry).then((rows) => {
      for (const s of rows.site) if (s < 0 || s >= count) throw new UserError(`dataset shard ${path}: site id ${s} outside the vocabulary of ${count}`);
      return rows;
    });
    this.cache.set(entry.file, loading);
    loading.catch(() => this.cache.delete(entry.file));
    while (this.cache.size > this.keep) this.cache.delete(this.cache.keys().next().value!);
    return loading;
  }
}

/** The site names of a dataset (sites.tsv: `site<TAB>training clicks` per line), checked against the manifest. */
async function readSiteNames(dir: string, m: DatasetManifest): Promise<string[]> {
  const path = join(dir, m.sites.file);
  const text = (await readChecked(path, m.sites.sha256, 'dataset')).toString('utf8');
  const names: string[] = [];
  for (const line of text.split('\n')) if (line !== '') names.push(line.slice(0, line.lastIndexOf('\t')));
  if (names.length !== m.sites.count) throw new UserError(`dataset ${path}: ${names.length} sites, the manifest says ${m.sites.count}`);
  return names;
}
