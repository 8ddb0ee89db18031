import { UserError } from '../common/user-error.js';
import { parseFlags } from './parse-flags.js';
import { DEFAULT_CLICKS_PER_QUERY, DEFAULT_NOISE, DEFAULT_ZIPF, writeSyntheticClickLog, type SyntheticClickLogOptions } from '../common/synthetic-clicklog.js';

/** Usage text of `infobound gen-clicklog`. */
export const GEN_CLICKLOG_USAGE = `Usage: infobound gen-clicklog --out FILE --queries N --sites M --seed S [--intents T] [--clicks C] [--noise E] [--zipf A]

Writes a synthetic click log (query<TAB>site<TAB>clicks, gzip when FILE ends in .gz) drawn from a
latent-intent model whose mutual information I(Q;S) is known exactly, plus FILE.meta.json, and
prints that metadata (true_mi in nats, oracle_recall_at_10, rows, ...) as one JSON line.

  --out FILE     output file
  --queries N    distinct queries
  --sites M      distinct sites
  --seed S       random seed; the same flags give byte-identical files
  --intents T    latent intents (default max(2, round(M / 10)))
  --clicks C     click events drawn (default ${DEFAULT_CLICKS_PER_QUERY} x N)
  --noise E      share of clicks that ignore the query's intent, in [0, 1) (default ${DEFAULT_NOISE})
  --zipf A       Zipf exponent of query and site popularity (default ${DEFAULT_ZIPF})
  -h, --help     show this help
`;

/** Numeric flags, named like the generator's option fields. */
const NUMERIC_FLAGS = ['queries', 'sites', 'seed', 'intents', 'clicks', 'noise', 'zipf'] as const;
type NumericFlag = (typeof NUMERIC_FLAGS)[number];
/** Flags without a default. */
const REQUIRED_FLAGS = ['out', 'queries', 'sites', 'seed'] as const;

/** Parses a flag's value as a number; the generator then checks its range and integrality. */
function parseNumber(flag: NumericFlag, text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new UserError(`gen-clicklog: --${flag} expects a number (got "${text}")`);
  return value;
}

/**
 * `infobound gen-clicklog`: writes a synthetic click log with known MI and prints its metadata as one
 * JSON line on stdout. Returns the exit code; bad flags or options throw a UserError.
 */
export async function genClicklogCommand(argv: string[]): Promise<number> {
  const values = parseFlags('gen-clicklog', argv, {
    out: { type: 'string' },
    ...Object.fromEntries(NUMERIC_FLAGS.map((flag) => [flag, { type: 'string' as const }])),
  }) as Partial<Record<NumericFlag | 'out', string>> & { help?: boolean };
  if (values.help) {
    process.stdout.write(GEN_CLICKLOG_USAGE);
    return 0;
  }
  for (const flag of REQUIRED_FLAGS) {
    if (values[flag] === undefined) throw new UserError(`gen-clicklog: --${flag} is required (see infobound gen-clicklog --help)`);
  }
  const number = (flag: NumericFlag): number | undefined => {
    const text = values[flag];
    return text === undefined ? undefined : parseNumber(flag, text);
  };
  const options: SyntheticClickLogOptions = {
    queries: number('queries')!,
    sites: number('sites')!,
    seed: number('seed'),
    intents: number('intents'),
    clicks: number('clicks'),
    noise: number('noise'),
    zipf: number('zipf'),
  };
  const out = values.out!;
  const started = performance.now();
  const meta = await writeSyntheticClickLog(out, options);
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify(meta)}\n`);
  process.stderr.write(
    `gen-clicklog: wrote ${meta.rows} rows (${meta.clicks} clicks) to ${out} in ${seconds.toFixed(1)} s; ` +
      `true I(Q;S) = ${meta.true_mi.toFixed(4)} nats, oracle recall@10 = ${meta.oracle_recall_at_10.toFixed(4)}\n`,
  );
  return 0;
}
