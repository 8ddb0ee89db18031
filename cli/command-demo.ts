import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { trainCommand } from './command-train.js';

/** Where the demo keeps its generated data (git-ignored). */
const DEMO_DIR = '.infobound/demo';

/**
 * `npm start`: a synthetic click log with known MI (generated once), then a training run on it with the
 * defaults, so a fresh clone shows the bound rising towards the true MI with nothing else installed.
 */
export async function demoCommand(argv: string[]): Promise<number> {
  const data = join(DEMO_DIR, 'clicks.tsv');
  if (!existsSync(data)) {
    process.stderr.write(`infobound: writing a synthetic click log to ${data}\n`);
    const meta = await writeSyntheticClickLog(data, { queries: 20000, sites: 2000, seed: 1 });
    process.stderr.write(`infobound: ${meta.rows} rows, true MI ${meta.true_mi.toFixed(3)} nats, oracle Recall@10 ${meta.oracle_recall_at_10.toFixed(3)}\n`);
  }
  return trainCommand(['--data', data, '--run-dir', join(DEMO_DIR, 'run'), ...argv]);
}
