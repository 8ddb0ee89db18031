import { UserError } from '../../common/user-error.js';
import { textFeatureHashes, type FeatureRows } from '../text/text-features.js';
import { columnOf, readChecked } from './checked-file.js';

/**
 * A prepared dataset's site vocabulary as a worker needs it at start: each site's training clicks
 * (the logQ frequencies) and its name's feature hashes, so that no worker featurises the vocabulary
 * (800 k sites took 2.2 s) or parses its names (sites.tsv, read only when names are asked for).
 *
 * Layout, little-endian: the 8 bytes `IBSITES1`, u32 sites, u32 features (total), then clicks
 * (f64 × sites), featureOffsets (u32 × (sites + 1), from 0), featureHashes (u32 × features): the
 * featuriser's 32-bit hashes, reduced to a table's buckets when read.
 */
export interface SiteFeatures {
  /** Training clicks of each site (index = site id). */
  clicks: Float64Array;
  /** Site s's features are featureHashes[featureOffsets[s] .. featureOffsets[s + 1]). */
  featureOffsets: Uint32Array;
  featureHashes: Uint32Array;
}

const MAGIC = Buffer.from('IBSITES1', 'latin1');
const HEADER_BYTES = MAGIC.length + 8;

/** The site-features file of these sites, their names featurised here. */
export function encodeSiteFeatures(names: readonly string[], clicks: Float64Array): Buffer {
  const n = names.length;
  const offsets = new Uint32Array(n + 1);
  const hashes: number[] = [];
  names.forEach((name, i) => {
    for (const h of textFeatureHashes(name)) hashes.push(h);
    offsets[i + 1] = hashes.length;
  });
  const out = Buffer.alloc(HEADER_BYTES + 8 * n + 4 * (n + 1 + hashes.length));
  MAGIC.copy(out, 0);
  out.writeUInt32LE(n, MAGIC.length);
  out.writeUInt32LE(hashes.length, MAGIC.length + 4);
  let at = HEADER_BYTES;
  for (const column of [clicks.subarray(0, n), offsets, Uint32Array.from(hashes)]) {
    Buffer.from(column.buffer, column.byteOffset, column.byteLength).copy(out, at);
    at += column.byteLength;
  }
  return out;
}

/** Reads the site-features file, checked against the manifest's SHA-256 and site count: a bad one is a one-line UserError naming it. */
export async function readSiteFeatures(path: string, expected: { sha256: string; count: number }): Promise<SiteFeatures> {
  const bytes = await readChecked(path, expected.sha256, 'dataset site features');
  const fail = (problem: string) => new UserError(`dataset site features ${path}: ${problem}`);
  if (bytes.length < HEADER_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw fail('not a site-features file');
  const n = bytes.readUInt32LE(MAGIC.length);
  const f = bytes.readUInt32LE(MAGIC.length + 4);
  if (n !== expected.count) throw fail(`holds ${n} sites, the manifest says ${expected.count}`);
  if (bytes.length !== HEADER_BYTES + 8 * n + 4 * (n + 1 + f)) throw fail(`is ${bytes.length} bytes, not what ${n} sites and ${f} features take`);
  const clicks = columnOf(Float64Array, bytes, HEADER_BYTES, n);
  const featureOffsets = columnOf(Uint32Array, bytes, HEADER_BYTES + 8 * n, n + 1);
  const featureHashes = columnOf(Uint32Array, bytes, HEADER_BYTES + 8 * n + 4 * (n + 1), f);
  if (featureOffsets[0] !== 0 || featureOffsets[n] !== f) throw fail('corrupt feature offsets');
  for (let s = 0; s < n; s++) if (featureOffsets[s + 1]! < featureOffsets[s]!) throw fail(`corrupt feature offsets at site ${s}`);
  return { clicks, featureOffsets, featureHashes };
}

/** The sites' features reduced to `buckets` (a power of two), as the model's tables take them. */
export function siteFeatureRows(sites: SiteFeatures, buckets: number): FeatureRows {
  const mask = buckets - 1;
  const { featureHashes } = sites;
  // A plain loop: Int32Array.from with a map function took 4.5 s for 19 M features.
  const ids = new Int32Array(featureHashes.length);
  for (let i = 0; i < ids.length; i++) ids[i] = featureHashes[i]! & mask;
  return { offsets: new Int32Array(sites.featureOffsets), ids };
}
