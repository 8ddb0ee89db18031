// Row-sharded tables against whole ones, W members in one process over a real ring: the pooled
// lookups (online and key copy), the world-mean row gradients and the Adagrad and momentum updates
// they give equal the unsharded tables', step after step, to float32 rounding.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../common/random.js';
import { expectArraysClose } from '../../testing/test-helpers.js';
import { startTestRing } from '../../testing/ring-test-helpers.js';
import { allToAllBlocks } from '../collective/all-to-all.js';
import { rowsMean } from '../collective/rows-mean.js';
import { MomentumEmbedding } from '../model/momentum-embedding.js';
import { RowShardPlan } from '../model/row-shard-plan.js';
import { SparseEmbedding } from '../model/sparse-embedding.js';
import { TableShard } from '../model/table-shard.js';
import { RowwiseAdagrad } from '../optim/rowwise-adagrad.js';
import type { FeatureRows } from '../text/text-features.js';
import { shardedPool, shardedRowGradients, type BagLookup } from './sharded-table-exchange.js';

const DIM = 4;
const LR = 0.3;
const MOMENTUM = 0.9;
/** Rows of the query table and of the site table (a site table with a momentum copy). */
const QUERY_ROWS = 41;
const SITE_ROWS = 29;

/** `b` bags of 0–5 random rows of a table of `rows` (repeats and empty bags included), named by shuffled items. */
function bags(rng: Rng, b: number, rows: number): { features: FeatureRows; items: Int32Array } {
  const offsets = [0];
  const ids: number[] = [];
  for (let i = 0; i < b; i++) {
    const n = rng.next() < 0.15 ? 0 : 1 + Math.floor(rng.next() * 5);
    for (let k = 0; k < n; k++) ids.push(Math.floor(rng.next() * rows));
    offsets.push(ids.length);
  }
  const items = Int32Array.from({ length: b }, (_, i) => (i === b - 1 ? 0 : (i * 5) % b));
  return { features: { offsets: Int32Array.from(offsets), ids: Int32Array.from(ids) }, items };
}

for (const world of [2, 3]) {
  test(`tables sharded by rows over ${world} members: lookups, gradients, Adagrad and the momentum copy are the whole tables', step after step`, async (t) => {
    const ring = await startTestRing(t, world, { timeoutMs: 10_000 });
    const seed = 7 * world;
    // The whole tables, drawn from one stream in order (query, then site), as the model draws them.
    const wholeRng = new Rng(seed);
    const query = new SparseEmbedding(QUERY_ROWS, DIM, wholeRng);
    const site = new SparseEmbedding(SITE_ROWS, DIM, wholeRng);
    const siteKey = new MomentumEmbedding(site, MOMENTUM);
    const queryOpt = new RowwiseAdagrad(QUERY_ROWS, DIM, LR);
    const siteOpt = new RowwiseAdagrad(SITE_ROWS, DIM, LR);
    // Each member draws the same stream and keeps its rows.
    const members = Array.from({ length: world }, (_, rank) => {
      const rng = new Rng(seed);
      return {
        query: new TableShard(new RowShardPlan(QUERY_ROWS, world), rank, DIM, { rng, lr: LR, momentum: null }),
        site: new TableShard(new RowShardPlan(SITE_ROWS, world), rank, DIM, { rng, lr: LR, momentum: MOMENTUM }),
      };
    });
    const rng = new Rng(seed + 1);
    for (let step = 1; step <= 4; step++) {
      const batches = members.map((_, m) => ({ q: bags(rng, 4 + m, QUERY_ROWS), s: bags(rng, 4 + m, SITE_ROWS) }));
      // The key copy first (as the step's momentum keys are), then the online rows.
      const keyed = await Promise.all(
        members.map((mem, m) => shardedPool([{ shard: mem.site, ...batches[m]!.s, side: 'key' }], { reducer: ring.reducers[m]!, rank: m, step })),
      );
      batches.forEach((b, m) => expectArraysClose(keyed[m]!.pooled[0]!, siteKey.pool(b.s.features, b.s.items, step), { atol: 1e-6, rtol: 1e-5 }));
      const lookups = members.map((mem, m): BagLookup[] => [
        { shard: mem.query, ...batches[m]!.q, side: 'online' },
        { shard: mem.site, ...batches[m]!.s, side: 'online' },
      ]);
      const online = await Promise.all(lookups.map((l, m) => shardedPool(l, { reducer: ring.reducers[m]!, rank: m, step })));
      batches.forEach((b, m) => {
        expectArraysClose(online[m]!.pooled[0]!, query.pool(b.q.features, b.q.items), { atol: 1e-6, rtol: 1e-5 });
        expectArraysClose(online[m]!.pooled[1]!, site.pool(b.s.features, b.s.items), { atol: 1e-6, rtol: 1e-5 });
      });

      const grads = batches.map((b) => [b.q, b.s].map((x) => Float32Array.from({ length: x.items.length * DIM }, () => rng.normal())));
      const owned = await Promise.all(
        lookups.map((l, m) => shardedRowGradients(l, grads[m]!, online[m]!.requests, { reducer: ring.reducers[m]!, rank: m, step })),
      );
      // The unsharded update: every member's row gradient, world mean, applied to the whole tables.
      const wantQuery = rowsMean(
        batches.map((b, m) => query.rowGradient(b.q.features, b.q.items, grads[m]![0]!)),
        world,
      );
      const wantSite = rowsMean(
        batches.map((b, m) => site.rowGradient(b.s.features, b.s.items, grads[m]![1]!)),
        world,
      );
      const shardRows = (m: number, which: 0 | 1) => Array.from(owned[m]![which]!.rows, (r) => r + (which === 0 ? members[m]!.query : members[m]!.site).start);
      assert.deepEqual(
        members.flatMap((_, m) => shardRows(m, 0)),
        Array.from(wantQuery.rows),
        `step ${step}: each query row's gradient on its owner`,
      );
      assert.deepEqual(
        members.flatMap((_, m) => shardRows(m, 1)),
        Array.from(wantSite.rows),
      );
      queryOpt.apply(query.table, wantQuery);
      siteKey.beforeOnlineUpdate(wantSite.rows, step);
      siteOpt.apply(site.table, wantSite);
      siteKey.afterOnlineUpdate(wantSite.rows, step);
      members.forEach((mem, m) => {
        mem.query.apply(owned[m]![0]!, step);
        mem.site.apply(owned[m]![1]!, step);
      });
      const joined = (pick: (mem: (typeof members)[number]) => Float32Array) => Float32Array.from(members.flatMap((mem) => Array.from(pick(mem))));
      expectArraysClose(
        joined((mem) => mem.query.online.table),
        query.table,
        { atol: 1e-6, rtol: 1e-5 },
      );
      expectArraysClose(
        joined((mem) => mem.site.online.table),
        site.table,
        { atol: 1e-6, rtol: 1e-5 },
      );
      expectArraysClose(
        joined((mem) => mem.query.opt.accum),
        queryOpt.accum,
        { atol: 1e-6, rtol: 1e-5 },
      );
    }
    siteKey.settleAll(4);
    for (const mem of members) mem.site.key!.settleAll(4);
    expectArraysClose(Float32Array.from(members.flatMap((mem) => Array.from(mem.site.key!.table))), siteKey.table, { atol: 1e-6, rtol: 1e-5 });
    // Each member holds its share of every table, about 1/W of it.
    for (const mem of members) assert.ok(mem.query.rows <= Math.ceil(QUERY_ROWS / world) && mem.site.rows <= Math.ceil(SITE_ROWS / world));
  });
}

test('an owner refuses a lookup naming a row outside its shard, or one whose header does not match it, naming the sender', async (t) => {
  const ring = await startTestRing(t, 2, { timeoutMs: 10_000 });
  const shard = new TableShard(new RowShardPlan(10, 2), 0, DIM, { rng: null, lr: LR, momentum: null });
  const ok = bags(new Rng(1), 3, 10);
  // Rank 1 hand-encodes its lookup (header: pairs, bags; then bag ids, row ids): first a row beyond rank 0's 5, then a header claiming 5 pairs.
  for (const [forged, message] of [
    [Int32Array.of(1, 1, 0, 99), /a request names row 99 of a shard of 5/],
    [Int32Array.of(5, 1, 0, 0), /rank 1 sent a lookup whose header does not match its 4 words/],
  ] as const) {
    const step = forged[0] === 1 ? 1 : 2;
    const [owner] = await Promise.allSettled([
      shardedPool([{ shard, ...ok, side: 'online' }], { reducer: ring.reducers[0]!, rank: 0, step }),
      allToAllBlocks(
        ring.reducers[1]!,
        [
          { rows: forged, values: new Float32Array(0) },
          { rows: Int32Array.of(0, 1), values: new Float32Array(0) },
        ],
        1,
        step,
      ),
    ]);
    assert.equal(owner!.status, 'rejected');
    assert.match((owner as PromiseRejectedResult).reason.message, message);
  }
});
