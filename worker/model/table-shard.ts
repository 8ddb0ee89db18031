import type { Rng } from '../../common/random.js';
import { RowwiseAdagrad } from '../optim/rowwise-adagrad.js';
import { MomentumEmbedding } from './momentum-embedding.js';
import type { RowShardPlan } from './row-shard-plan.js';
import { partialBagSums, type BagRowRequest } from './sharded-bag-lookup.js';
import { SparseEmbedding, type SparseRowGrad } from './sparse-embedding.js';

/** How a table's rows start and learn. */
export interface TableShardOptions {
  /** Draws the whole table's initial rows (this member keeps its own), uniform in ±0.1; null starts every row at zero. */
  rng: Rng | null;
  /** Row-wise Adagrad learning rate. */
  lr: number;
  /** MoCo momentum of the table's key copy (a site table's), or null for a table without one. */
  momentum: number | null;
}

/**
 * One member's rows of a row-sharded table (TorchRec's row-wise sharding, docs/architecture.md §8):
 * rows [start, end) of the plan, their row-wise Adagrad state and, for a site table, their momentum
 * copy. Row ids here are local (row − start). The member answers other members' lookups of its rows
 * and applies the world-mean gradient of its rows, so the whole table, its optimizer state and its
 * key copy are spread over the members, each holding about 1/W.
 */
export class TableShard {
  readonly start: number;
  readonly end: number;
  /** The member's rows of the online table. */
  readonly online: SparseEmbedding;
  readonly opt: RowwiseAdagrad;
  /** The member's rows of the key copy, or null. */
  readonly key: MomentumEmbedding | null;

  constructor(
    readonly plan: RowShardPlan,
    readonly rank: number,
    readonly dim: number,
    opts: TableShardOptions,
  ) {
    ({ start: this.start, end: this.end } = plan.range(rank));
    const rows = this.end - this.start;
    this.online = new SparseEmbedding(rows, dim, null);
    if (opts.rng !== null) {
      // The whole table's draws in order (as an unsharded SparseEmbedding makes them), keeping this member's.
      const first = this.start * dim;
      const last = this.end * dim;
      for (let i = 0; i < plan.rows * dim; i++) {
        const v = (opts.rng.next() * 2 - 1) * 0.1;
        if (i >= first && i < last) this.online.table[i - first] = v;
      }
    }
    this.opt = new RowwiseAdagrad(rows, dim, opts.lr);
    this.key = opts.momentum === null ? null : new MomentumEmbedding(this.online, opts.momentum);
  }

  /** Rows this member holds. */
  get rows(): number {
    return this.end - this.start;
  }

  /**
   * A member's lookup of rows held here: per bag, the sum of its requested rows (bagCount×dim) of the
   * online table, or of the key copy as it stood after step − 1 (the rows brought up to date first).
   * A request naming a row or bag out of range is a RangeError, and nothing is read.
   */
  answer(request: BagRowRequest, bagCount: number, side: 'online' | 'key', step: number): Float32Array {
    if (side === 'online') return partialBagSums(this.online.table, this.dim, request, bagCount);
    if (this.key === null) throw new RangeError('a key lookup of a table without a key copy');
    for (const r of request.rows) if (r < 0 || r >= this.rows) throw new RangeError(`a request names row ${r} of a shard of ${this.rows}`);
    this.key.catchUp(request.rows, step - 1);
    return partialBagSums(this.key.table, this.dim, request, bagCount);
  }

  /** Applies the world-mean gradient of rows held here (local ids) at `step`: Adagrad, and the key copy's lazy momentum step around it. */
  apply(grad: SparseRowGrad, step: number): void {
    for (const r of grad.rows) if (r < 0 || r >= this.rows) throw new RangeError(`a gradient of row ${r} of a shard of ${this.rows}`);
    this.key?.beforeOnlineUpdate(grad.rows, step);
    this.opt.apply(this.online.table, grad);
    this.key?.afterOnlineUpdate(grad.rows, step);
  }
}
