import { hashRange } from '../text/text-features.js';

const HOLDOUT_SALT = 0x2545f491;

/**
 * Whether a query is held out for evaluation: by a hash of its text, so the choice is the same in
 * every run, every worker and every tool (training on a raw log, `infobound prepare`), and whole
 * queries are held out, never single (query, site) rows.
 */
export function isHeldOutQuery(query: string, holdout: number): boolean {
  return hashRange(query, 0, query.length, HOLDOUT_SALT) < holdout * 2 ** 32;
}
