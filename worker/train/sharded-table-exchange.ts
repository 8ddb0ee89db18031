import { concatArrays } from '../../common/concat-arrays.js';
import { allToAllBlocks } from '../collective/all-to-all.js';
import type { GradientReducer } from '../collective/gradient-reducer.js';
import { ownerRowGradient, perRowBagGradient, pooledFromPartials, requestsByOwner, type BagRowRequest } from '../model/sharded-bag-lookup.js';
import type { SparseRowGrad } from '../model/sparse-embedding.js';
import type { TableShard } from '../model/table-shard.js';
import type { FeatureRows } from '../text/text-features.js';

/** One pooled lookup of a step: a member's bags (items' feature rows) in one row-sharded table. */
export interface BagLookup {
  shard: TableShard;
  features: FeatureRows;
  items: ArrayLike<number>;
  /** The online rows, or the key copy's (as of the step before). */
  side: 'online' | 'key';
}

/** What a step's lookups sent each owner, kept for their backward. */
export interface LookupRequests {
  /** requests[t][o]: lookup t's (bag, local row) pairs held by owner o. */
  requests: BagRowRequest[][];
  /** received[t][m]: member m's request of lookup t to this member. */
  received: BagRowRequest[][];
}

/** Most bags one member may look up in one table a step: a larger count is a peer's error, not an allocation. */
const MAX_BAGS = 1 << 24;

/** Where a member's exchange stands: its rank, the reducer the all-to-alls travel on, and the step they are tagged with. */
export interface ExchangePlace {
  reducer: GradientReducer;
  rank: number;
  step: number;
}

/**
 * The pooled rows of each lookup (B×dim, the whole table's mean pooling), from the owners of the rows
 * (docs/architecture.md §8): one all-to-all carries every lookup's requests to the rows' owners,
 * which answer with per-bag partial sums in a second one. A collective: every member passes the same
 * tables in the same order (its own bags). What a peer sends is checked before it is used: a row or
 * bag out of range, or a block of the wrong size, is a RangeError naming the sender.
 */
export async function shardedPool(lookups: readonly BagLookup[], at: ExchangePlace): Promise<{ pooled: Float32Array[]; requests: LookupRequests }> {
  const world = at.reducer.world;
  const requests = lookups.map((l) => requestsByOwner(l.features, l.items, l.shard.plan));
  const asked = await allToAllBlocks(
    at.reducer,
    Array.from({ length: world }, (_, o) => encodeRequests(lookups, requests, o)),
    at.rank,
    at.step,
  );
  const received = lookups.map(() => new Array<BagRowRequest>(world));
  const answers = asked.map((block, m) => {
    const { bagCounts, perTable } = decodeRequests(block, lookups.length, m);
    const sums = perTable.map((req, t) => {
      received[t]![m] = req;
      return lookups[t]!.shard.answer(req, bagCounts[t]!, lookups[t]!.side, at.step);
    });
    return { rows: new Int32Array(0), values: concatFloat32(sums) };
  });
  const partials = await allToAllBlocks(at.reducer, answers, at.rank, at.step);
  const pooled = lookups.map((l, t) => {
    const dim = l.shard.dim;
    const parts = partials.map((block, o) => sliceTable(block.values, lookups, t, (u) => lookups[u]!.items.length * lookups[u]!.shard.dim, o));
    return pooledFromPartials(parts, l.features, l.items, dim);
  });
  return { pooled, requests: { requests, received } };
}

/**
 * The world-mean gradient of this member's rows of each lookup's table (local ids, sorted), from every
 * member's gradient of its pooled rows (B×dim per lookup): each member sends each owner the rows of
 * the bags it looked up there, and the owner scatters them to the rows the bags read. Tables looked up
 * twice (by two lookups) get the two gradients added. To float32 rounding it is the unsharded table's
 * world-mean row gradient (worker/collective/rows-mean.ts), restricted to this member's rows.
 */
export async function shardedRowGradients(
  lookups: readonly BagLookup[],
  pooledGrads: readonly Float32Array[],
  sent: LookupRequests,
  at: ExchangePlace,
): Promise<SparseRowGrad[]> {
  const world = at.reducer.world;
  const perRow = lookups.map((l, t) => perRowBagGradient(pooledGrads[t]!, l.features, l.items, l.shard.dim));
  // To owner o: for each lookup, the gradient rows of the distinct bags its request named, ascending.
  const outgoing = Array.from({ length: world }, (_, o) => ({
    rows: new Int32Array(0),
    values: concatFloat32(lookups.map((l, t) => bagRows(perRow[t]!, distinctBags(sent.requests[t]![o]!), l.shard.dim))),
  }));
  const incoming = await allToAllBlocks(at.reducer, outgoing, at.rank, at.step);
  return lookups.map((l, t) => {
    const dim = l.shard.dim;
    const compact = sent.received[t]!.map((req, m) => {
      const bags = distinctBags(req);
      const index = new Map<number, number>();
      bags.forEach((b, i) => index.set(b, i));
      const grads = sliceTable(incoming[m]!.values, lookups, t, (u) => distinctBags(sent.received[u]![m]!).length * lookups[u]!.shard.dim, m);
      return { request: { bags: Int32Array.from(req.bags, (b) => index.get(b)!), rows: req.rows }, grads };
    });
    return ownerRowGradient(
      compact.map((c) => c.request),
      compact.map((c) => c.grads),
      dim,
      l.shard.rows,
      world,
    );
  });
}

/** Lookup t's part of a block holding every lookup's part in order, part u being `size(u)` values; a block of another size is the sender's error. */
function sliceTable(values: Float32Array, lookups: readonly BagLookup[], t: number, size: (u: number) => number, from: number): Float32Array {
  let start = 0;
  for (let u = 0; u < t; u++) start += size(u);
  let total = start;
  for (let u = t; u < lookups.length; u++) total += size(u);
  if (values.length !== total) throw new RangeError(`rank ${from} sent ${values.length} values for the tables' ${total}`);
  return values.subarray(start, start + size(t));
}

/** Owner o's requests of every lookup in one block: a header of (pairs, bags) per lookup, then each lookup's bag ids and row ids. */
function encodeRequests(lookups: readonly BagLookup[], requests: BagRowRequest[][], o: number): SparseRowGrad {
  const header = [...requests.map((r) => r[o]!.bags.length), ...lookups.map((l) => l.items.length)];
  const parts = requests.flatMap((r) => [r[o]!.bags, r[o]!.rows]);
  const rows = new Int32Array(header.length + parts.reduce((n, p) => n + p.length, 0));
  rows.set(header);
  let at = header.length;
  for (const p of parts) {
    rows.set(p, at);
    at += p.length;
  }
  return { rows, values: new Float32Array(0) };
}

function decodeRequests(block: SparseRowGrad, tables: number, from: number): { bagCounts: number[]; perTable: BagRowRequest[] } {
  const r = block.rows;
  if (r.length < 2 * tables) throw new RangeError(`rank ${from} sent a lookup of ${r.length} words for ${tables} tables`);
  const pairs = Array.from(r.subarray(0, tables));
  const bagCounts = Array.from(r.subarray(tables, 2 * tables));
  if ([...pairs, ...bagCounts].some((n) => n < 0) || bagCounts.some((n) => n > MAX_BAGS) || r.length !== 2 * tables + 2 * pairs.reduce((a, b) => a + b, 0)) {
    throw new RangeError(`rank ${from} sent a lookup whose header does not match its ${r.length} words`);
  }
  let at = 2 * tables;
  const perTable = pairs.map((n) => {
    const req = { bags: r.subarray(at, at + n), rows: r.subarray(at + n, at + 2 * n) };
    at += 2 * n;
    return req;
  });
  return { bagCounts, perTable };
}

/** The distinct bags a request names, ascending. */
function distinctBags(req: BagRowRequest): Int32Array {
  return Int32Array.from(new Set(req.bags)).sort();
}

/** Rows `bags` of a B×dim array, in that order. */
function bagRows(values: Float32Array, bags: Int32Array, dim: number): Float32Array {
  const out = new Float32Array(bags.length * dim);
  bags.forEach((b, i) => out.set(values.subarray(b * dim, (b + 1) * dim), i * dim));
  return out;
}

function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  return concatArrays((n) => new Float32Array(n), parts);
}
