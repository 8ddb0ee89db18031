import { hashRange } from '../text/text-features.js';

const HOLDOUT_SALT = 0x2545f491;

/**
 * Whether a query is held out for evaluation: by a hash of its text, so the choice is the same in
 * every run, every worker and every tool (training on a raw log, `infobound prepare`), and whole
 * queries are held out, never single (query, site) rows.
 */
export function isHeldOutQuery(query: string, holdout: number): boolean {
  return queryHashOf(query) < heldOutBelow(holdout);
}

/** The 32-bit hash the split is decided by (equal for equal queries: a prepared row's query key). */
export function queryHashOf(query: string): number {
  return hashRange(query, 0, query.length, HOLDOUT_SALT);
}

/** A query is held out when its hash is below this. */
export function heldOutBelow(holdout: number): number {
  return holdout * 2 ** 32;
}
