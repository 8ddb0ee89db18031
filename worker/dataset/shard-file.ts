import { UserError } from '../../common/user-error.js';
import { columnOf, readChecked } from './checked-file.js';

/**
 * One shard of a prepared click-log dataset: rows of (site id, clicks, query key, query features),
 * stored column by column so that a reader takes each column as a typed array without parsing.
 *
 * Layout, little-endian: the 8 bytes `IBSHARD1`, u32 rows, u32 features (total), then the columns
 * site (i32 × rows), clicks (i32 × rows), queryKey (u32 × rows), featureOffsets (u32 × (rows + 1),
 * from 0), featureHashes (u32 × features). Features are the featuriser's 32-bit hashes before they
 * are reduced to a table's buckets, so one dataset serves any `clicklog.hash_buckets`.
 */
export interface ShardRows {
  /** Site id of each row (an index into the dataset's site vocabulary). */
  site: Int32Array;
  /** Click count of each row (≥ 1): the row is that many training examples. */
  clicks: Int32Array;
  /** A 32-bit hash of each row's query text: rows with the same query have the same key. */
  queryKey: Uint32Array;
  /** Row r's features are featureHashes[featureOffsets[r] .. featureOffsets[r + 1]). */
  featureOffsets: Uint32Array;
  featureHashes: Uint32Array;
}

const MAGIC = Buffer.from('IBSHARD1', 'latin1');
const HEADER_BYTES = MAGIC.length + 8;

/** Bytes of a shard holding `rows` rows with `features` features in all. */
export function shardBytes(rows: number, features: number): number {
  return HEADER_BYTES + 4 * (3 * rows + rows + 1 + features);
}

/** The shard's bytes. */
export function encodeShard(rows: ShardRows): Buffer {
  const n = rows.site.length;
  const f = rows.featureHashes.length;
  const out = Buffer.alloc(shardBytes(n, f));
  MAGIC.copy(out, 0);
  out.writeUInt32LE(n, MAGIC.length);
  out.writeUInt32LE(f, MAGIC.length + 4);
  let at = HEADER_BYTES;
  for (const column of [rows.site, rows.clicks, rows.queryKey, rows.featureOffsets, rows.featureHashes]) {
    // The machine is little-endian (checked where shards are read), so a column is its bytes.
    Buffer.from(column.buffer, column.byteOffset, column.byteLength).copy(out, at);
    at += column.byteLength;
  }
  return out;
}

/**
 * Reads a shard and checks it against the manifest's SHA-256 and row count before anything else:
 * a missing, truncated or altered shard is a one-line UserError naming it.
 */
export async function readShard(path: string, expected: { sha256: string; rows: number }): Promise<ShardRows> {
  return decodeShard(await readChecked(path, expected.sha256, 'dataset shard'), path, expected.rows);
}

/** The columns of a shard's bytes, with its structure checked (a shard that passed its checksum was written by us, but the manifest may be another's). */
export function decodeShard(bytes: Buffer, path: string, expectedRows: number): ShardRows {
  const fail = (problem: string) => new UserError(`dataset shard ${path}: ${problem}`);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw fail('this machine is big-endian; shards are little-endian');
  if (bytes.length < HEADER_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw fail('not a shard file');
  const n = bytes.readUInt32LE(MAGIC.length);
  const f = bytes.readUInt32LE(MAGIC.length + 4);
  if (n !== expectedRows) throw fail(`holds ${n} rows, the manifest says ${expectedRows}`);
  if (bytes.length !== shardBytes(n, f)) throw fail(`is ${bytes.length} bytes, ${shardBytes(n, f)} expected for ${n} rows and ${f} features`);
  const int32 = (at: number, count: number) => columnOf(Int32Array, bytes, HEADER_BYTES + 4 * at, count);
  const uint32 = (at: number, count: number) => columnOf(Uint32Array, bytes, HEADER_BYTES + 4 * at, count);
  const site = int32(0, n);
  const clicks = int32(n, n);
  const queryKey = uint32(2 * n, n);
  const featureOffsets = uint32(3 * n, n + 1);
  const featureHashes = uint32(4 * n + 1, f);
  if (featureOffsets[0] !== 0 || featureOffsets[n] !== f) throw fail('corrupt feature offsets');
  for (let r = 0; r < n; r++) if (featureOffsets[r + 1]! < featureOffsets[r]!) throw fail(`corrupt feature offsets at row ${r}`);
  for (let r = 0; r < n; r++) if (clicks[r]! < 1) throw fail(`row ${r} has ${clicks[r]} clicks`);
  return { site, clicks, queryKey, featureOffsets, featureHashes };
}
