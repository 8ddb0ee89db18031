import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { LargeStringSet } from './large-string-set.js';
import { UserError } from './user-error.js';
import { Rng } from './random.js';

/**
 * Synthetic click logs (query → site) drawn from a latent-intent model whose mutual information
 * I(Q;S) is known exactly, so a trainer can print its MI lower bounds next to the truth.
 *
 * Model: every query q and every site s belongs to one of T intents. A click on query q lands on a
 * site of q's intent with probability 1 − ε (Zipf-like within the intent) and on any site with
 * probability ε (Zipf-like over all sites): p(s|q) = (1 − ε)·p(s|t(q)) + ε·p_noise(s). Because p(s|q)
 * depends on q only through t(q), I(Q;S) = I(T;S), which is what makes the exact value cheap.
 */

/** Generic query words shared by every intent; they carry no information about the intent. */
export const GENERIC_WORDS = ['best', 'cheap', 'online', 'near', 'buy', 'free', 'new', 'top'] as const;

/** Marks metadata written by this generator (bumped whenever the same seed would give other data). */
export const SYNTHETIC_GENERATOR = 'infobound-synthetic-v1';

/** Default click noise ε. */
export const DEFAULT_NOISE = 0.1;
/** Default Zipf exponent of query popularity, of sites within an intent and of the noise sites. */
export const DEFAULT_ZIPF = 1;
/** Default number of click events per distinct query. */
export const DEFAULT_CLICKS_PER_QUERY = 20;
/** Default seed. */
export const DEFAULT_SEED = 1;

/** Largest accepted Zipf exponent: beyond it nearly all mass sits on one item and tails underflow. */
const MAX_ZIPF = 10;
/** Minimum vocabulary size of an intent (intents with many queries get more words). */
const WORDS_PER_INTENT = 6;
/** Share of queries that get one generic word inserted. */
const GENERIC_RATE = 0.3;
/** Top-level domains, drawn uniformly so that they carry no intent information. */
const TLDS = ['com', 'net', 'org', 'io', 'co', 'info', 'shop', 'site'] as const;
/** Syllable parts of pseudo-words: onset + vowel + optional coda, as in `mor-vi`. */
const ONSETS = ['b', 'd', 'f', 'g', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'ch', 'sh'] as const;
const VOWELS = ['a', 'e', 'i', 'o', 'u'] as const;
const CODAS = ['n', 'r', 's', 'l', 'm', 'k'] as const;

/** Parameters of the generative model and of the sample drawn from it. */
export interface SyntheticClickLogOptions {
  /** Number of distinct queries N (positive integer, ≥ intents). */
  queries: number;
  /** Number of distinct sites M (positive integer, ≥ intents). */
  sites: number;
  /** Seed of every random choice; the same options give byte-identical output. Default 1. */
  seed?: number;
  /** Number of latent intents T. Default max(2, round(sites / 10)), capped at queries and sites. */
  intents?: number;
  /** Number of i.i.d. click events drawn. Default 20 × queries. */
  clicks?: number;
  /** Click noise ε in [0, 1): the share of clicks that ignore the query's intent. Default 0.1. */
  noise?: number;
  /** Zipf exponent (≥ 0, ≤ 10) of p(q), of p(s|t) within an intent and of p_noise. Default 1. */
  zipf?: number;
}

/**
 * The generative model, with every probability needed to compute exact quantities.
 * Ids are array indices: query id q indexes `queries`, `queryIntent`, `queryProb`; site id s indexes
 * `sites`, `siteIntent`, `noiseProb`; intent id t indexes the per-intent arrays.
 */
export interface ClickLogModel {
  /** Seed the model was built from. */
  readonly seed: number;
  /** Number of intents T. */
  readonly intents: number;
  /** Click noise ε. */
  readonly noise: number;
  /** Zipf exponent used for p(q), p(s|t) and p_noise. */
  readonly zipf: number;
  /** Query strings (space-separated words), all distinct. */
  readonly queries: readonly string[];
  /** Intent of each query. */
  readonly queryIntent: Int32Array;
  /** Query popularity p(q); sums to 1. */
  readonly queryProb: Float64Array;
  /** Intent marginal p(t) = Σ_{q: t(q)=t} p(q); every entry > 0. */
  readonly intentProb: Float64Array;
  /** Site names like `morvi-kesto.com`, all distinct. */
  readonly sites: readonly string[];
  /** Intent of each site. */
  readonly siteIntent: Int32Array;
  /** Per intent: ids of its sites in ascending order (at least one). */
  readonly intentSites: readonly Int32Array[];
  /** Per intent: p(s|t) of `intentSites[t][j]`, summing to 1; p(s|t) is 0 on every other site. */
  readonly intentSiteProb: readonly Float64Array[];
  /** Noise distribution p_noise(s) over all sites; sums to 1. */
  readonly noiseProb: Float64Array;
  /** Per intent: its own words, distinct across intents and from GENERIC_WORDS. */
  readonly intentWords: readonly (readonly string[])[];
}

/** One aggregated row of a click log: `clicks` click events on the pair (query id, site id). */
export interface ClickRow {
  /** Query id. */
  query: number;
  /** Site id. */
  site: number;
  /** Number of click events on the pair (≥ 1). */
  clicks: number;
}

/** Metadata of a generated click log, also written to `<file>.meta.json`. Entropies and MI are in nats. */
export interface SyntheticClickLogMeta {
  /** Always `infobound-synthetic-v1`. */
  generator: typeof SYNTHETIC_GENERATOR;
  /** Always `tsv`: `query<TAB>site<TAB>clicks` lines, no header. */
  format: 'tsv';
  /** `gzip` when the file name ends in `.gz`. */
  compression: 'gzip' | 'none';
  /** Seed the file was generated from. */
  seed: number;
  /** Distinct queries in the model (some may have drawn no click). */
  queries: number;
  /** Distinct sites in the model. */
  sites: number;
  /** Latent intents. */
  intents: number;
  /** Click noise ε. */
  noise: number;
  /** Zipf exponent. */
  zipf: number;
  /** Click events drawn (the sum of the clicks column). */
  clicks: number;
  /** Distinct (query, site) pairs written, i.e. lines in the file. */
  rows: number;
  /** Exact I(Q;S) of the model, in nats. */
  true_mi: number;
  /** Entropy H(S) of the site marginal; I(Q;S) ≤ H(S). */
  h_site: number;
  /** Entropy H(T) of the intent marginal; I(Q;S) ≤ H(T) because S depends on Q only through T. */
  h_intent: number;
  /** Expected Recall@10 of ranking sites by the true p(s|q): the ceiling for any learned ranker. */
  oracle_recall_at_10: number;
}

/** A sidecar as read back: `true_mi` is validated, the other fields are present when the generator wrote them. */
export type ClickLogSidecar = Pick<SyntheticClickLogMeta, 'true_mi'> & Partial<SyntheticClickLogMeta>;

/** The options with defaults filled in and validated. */
interface ResolvedOptions {
  queries: number;
  sites: number;
  seed: number;
  intents: number;
  clicks: number;
  noise: number;
  zipf: number;
}

/** Validates options and fills in defaults; every error names the offending field. */
function resolveOptions(options: SyntheticClickLogOptions): ResolvedOptions {
  const positiveInt = (field: string, v: number): number => {
    if (!Number.isSafeInteger(v) || v < 1) throw new UserError(`synthetic click log: ${field} must be a positive integer (got ${v})`);
    return v;
  };
  const queries = positiveInt('queries', options.queries);
  const sites = positiveInt('sites', options.sites);
  const seed = options.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new UserError(`synthetic click log: seed must be an integer in [0, 4294967295] (got ${seed})`);
  }
  const intents = positiveInt('intents', options.intents ?? Math.min(queries, sites, Math.max(2, Math.round(sites / 10))));
  if (intents > queries) throw new UserError(`synthetic click log: intents (${intents}) must not exceed queries (${queries})`);
  if (intents > sites) throw new UserError(`synthetic click log: intents (${intents}) must not exceed sites (${sites})`);
  const clicks = positiveInt('clicks', options.clicks ?? DEFAULT_CLICKS_PER_QUERY * queries);
  const noise = options.noise ?? DEFAULT_NOISE;
  if (!(noise >= 0 && noise < 1)) throw new UserError(`synthetic click log: noise must be in [0, 1) (got ${noise})`);
  const zipf = options.zipf ?? DEFAULT_ZIPF;
  if (!(zipf >= 0 && zipf <= MAX_ZIPF)) throw new UserError(`synthetic click log: zipf must be in [0, ${MAX_ZIPF}] (got ${zipf})`);
  return { queries, sites, seed, intents, clicks, noise, zipf };
}

/** Zipf-like probabilities over n items whose ranks are a random permutation: p ∝ (rank + 1)^−a. */
function zipfOverRandomRanks(n: number, a: number, rng: Rng): Float64Array {
  const ranks = rng.shuffle(Int32Array.from({ length: n }, (_, i) => i));
  const p = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) total += p[i] = (ranks[i]! + 1) ** -a;
  for (let i = 0; i < n; i++) p[i]! /= total;
  return p;
}

/** Assigns n items to t groups so that every group gets at least one item (n ≥ t), in random order. */
function assignGroups(n: number, t: number, rng: Rng): Int32Array {
  const group = new Int32Array(n);
  for (let i = 0; i < n; i++) group[i] = i < t ? i : rng.int(t);
  return rng.shuffle(group);
}

/** Returns a generator of pronounceable pseudo-words that never repeats a word nor returns a reserved one. */
function pseudoWords(rng: Rng, reserved: Iterable<string>): () => string {
  const used = new LargeStringSet();
  for (const word of reserved) used.add(word);
  return () => {
    for (let failures = 0; ; failures++) {
      // Longer words once short ones keep colliding, so any number of words can be made.
      const syllables = 2 + Math.floor(failures / 8);
      let word = '';
      for (let i = 0; i < syllables; i++) {
        word += ONSETS[rng.int(ONSETS.length)]! + VOWELS[rng.int(VOWELS.length)]!;
        if (rng.next() < 0.3) word += CODAS[rng.int(CODAS.length)]!;
      }
      if (!used.has(word)) {
        used.add(word);
        return word;
      }
    }
  };
}

/** n words from a vocabulary in random order: distinct while the vocabulary allows, repeated beyond. */
function pickWords(vocab: readonly string[], n: number, rng: Rng): string[] {
  const pool = [...vocab];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    if (i < pool.length) {
      const j = i + rng.int(pool.length - i);
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
      out.push(pool[i]!);
    } else {
      out.push(vocab[rng.int(vocab.length)]!);
    }
  }
  return out;
}

/** A new query of an intent: 1–3 of its words, sometimes with a generic word, distinct from every query in `seen`. */
function freshQuery(vocab: readonly string[], seen: LargeStringSet, rng: Rng): string {
  for (let attempt = 0; ; attempt++) {
    // Grow the query when short ones are exhausted, so the loop always ends.
    const words = pickWords(vocab, 1 + rng.int(3) + Math.floor(attempt / 4), rng);
    if (rng.next() < GENERIC_RATE) words.splice(rng.int(words.length + 1), 0, GENERIC_WORDS[rng.int(GENERIC_WORDS.length)]!);
    const query = words.join(' ');
    if (!seen.has(query)) {
      seen.add(query);
      return query;
    }
  }
}

/** Builds the generative model (validating the options); deterministic in the options. */
export function buildClickLogModel(options: SyntheticClickLogOptions): ClickLogModel {
  const { queries: n, sites: m, seed, intents, noise, zipf } = resolveOptions(options);
  const rng = new Rng(seed);
  const newWord = pseudoWords(rng, GENERIC_WORDS);

  const queryIntent = assignGroups(n, intents, rng);
  const queryProb = zipfOverRandomRanks(n, zipf, rng);
  const queriesPerIntent = new Int32Array(intents);
  const intentProb = new Float64Array(intents);
  for (let q = 0; q < n; q++) {
    queriesPerIntent[queryIntent[q]!]!++;
    intentProb[queryIntent[q]!]! += queryProb[q]!;
  }
  // About n_t^(1/3) words give enough 1–3 word combinations for an intent's n_t distinct queries.
  const intentWords = Array.from(queriesPerIntent, (count) => Array.from({ length: Math.max(WORDS_PER_INTENT, Math.ceil(Math.cbrt(2 * count))) }, newWord));

  // More distinct queries than one Set holds are allowed (2^24).
  const seen = new LargeStringSet();
  const queries = Array.from(queryIntent, (t) => freshQuery(intentWords[t]!, seen, rng));
  // Site names reuse only words that some query of the intent contains, so name and queries always overlap.
  const queriedWords = intentWords.map(() => new Set<string>());
  for (let q = 0; q < n; q++) {
    const own = new Set(intentWords[queryIntent[q]!]);
    for (const w of queries[q]!.split(' ')) if (own.has(w)) queriedWords[queryIntent[q]!]!.add(w);
  }
  const queriedVocab = queriedWords.map((set) => [...set]);

  const siteIntent = assignGroups(m, intents, rng);
  const sites = Array.from(siteIntent, (t) => {
    const vocab = queriedVocab[t]!;
    const parts = pickWords(vocab, Math.min(vocab.length, 1 + rng.int(2)), rng);
    parts.splice(rng.int(parts.length + 1), 0, newWord());
    return `${parts.join('-')}.${TLDS[rng.int(TLDS.length)]!}`;
  });
  const members: number[][] = Array.from({ length: intents }, () => []);
  for (let s = 0; s < m; s++) members[siteIntent[s]!]!.push(s);
  const intentSites = members.map((ids) => Int32Array.from(ids));
  const intentSiteProb = intentSites.map((ids) => zipfOverRandomRanks(ids.length, zipf, rng));
  const noiseProb = zipfOverRandomRanks(m, zipf, rng);

  return {
    seed,
    intents,
    noise,
    zipf,
    queries,
    queryIntent,
    queryProb,
    intentProb,
    sites,
    siteIntent,
    intentSites,
    intentSiteProb,
    noiseProb,
    intentWords,
  };
}

/** The site marginal p(s) = ε·p_noise(s) + (1 − ε)·p(t(s))·p(s|t(s)), since each site has one intent. */
function siteMarginal(model: ClickLogModel): Float64Array {
  const { noise: eps, noiseProb, intentProb, intentSites, intentSiteProb } = model;
  const p = noiseProb.map((x) => eps * x);
  intentSites.forEach((ids, t) => {
    for (let j = 0; j < ids.length; j++) p[ids[j]!]! += (1 - eps) * intentProb[t]! * intentSiteProb[t]![j]!;
  });
  return p;
}

/** a·log(a / b), with 0·log 0 = 0. */
function klTerm(a: number, b: number): number {
  return a > 0 ? a * Math.log(a / b) : 0;
}

/** Shannon entropy in nats. */
function entropy(p: ArrayLike<number>): number {
  let h = 0;
  for (let i = 0; i < p.length; i++) h -= klTerm(p[i]!, 1);
  return h;
}

/**
 * Exact I(Q;S) in nats. Since p(s|q) depends only on t(q), I(Q;S) = Σ_t p(t) KL(p(·|t) ‖ p(·)). The
 * off-intent sites of t all have p(s|t) = ε·p_noise(s), so their share of the KL is one sum over all
 * sites corrected on t's own sites: O(T + M) in all.
 */
export function trueMutualInformation(model: ClickLogModel): number {
  const { noise: eps, noiseProb, intentProb, intentSites, intentSiteProb } = model;
  const ps = siteMarginal(model);
  let noiseOnly = 0;
  for (let s = 0; s < ps.length; s++) noiseOnly += klTerm(eps * noiseProb[s]!, ps[s]!);
  let mi = 0;
  intentSites.forEach((ids, t) => {
    let kl = noiseOnly;
    for (let j = 0; j < ids.length; j++) {
      const s = ids[j]!;
      const off = eps * noiseProb[s]!;
      kl += klTerm(off + (1 - eps) * intentSiteProb[t]![j]!, ps[s]!) - klTerm(off, ps[s]!);
    }
    mi += intentProb[t]! * kl;
  });
  // Rounding can leave a tiny negative value when Q and S are (nearly) independent.
  return Math.max(0, mi);
}

/** Entropy H(S) of the site marginal, in nats. */
export function siteEntropy(model: ClickLogModel): number {
  return entropy(siteMarginal(model));
}

/** Entropy H(T) of the intent marginal, in nats. */
export function intentEntropy(model: ClickLogModel): number {
  return entropy(model.intentProb);
}

/**
 * Expected Recall@k of the oracle ranker that orders sites by the true p(s|q): Σ_q p(q) Σ_{s ∈ top-k} p(s|q).
 * Exact; the top k of p(·|t) are among t's own sites and the k noisiest other sites.
 */
export function oracleRecallAtK(model: ClickLogModel, k: number): number {
  if (!Number.isSafeInteger(k) || k < 1) throw new UserError(`oracle recall: k must be a positive integer (got ${k})`);
  const { noise: eps, noiseProb, intentProb, intentSites, intentSiteProb, siteIntent } = model;
  const byNoise = Array.from(noiseProb.keys()).sort((a, b) => noiseProb[b]! - noiseProb[a]!);
  let recall = 0;
  intentSites.forEach((ids, t) => {
    const candidates = Array.from(ids, (s, j) => eps * noiseProb[s]! + (1 - eps) * intentSiteProb[t]![j]!);
    if (eps > 0) {
      for (let i = 0, taken = 0; i < byNoise.length && taken < k; i++) {
        const s = byNoise[i]!;
        if (siteIntent[s] === t) continue;
        candidates.push(eps * noiseProb[s]!);
        taken++;
      }
    }
    candidates.sort((a, b) => b - a);
    let top = 0;
    for (let i = 0; i < Math.min(k, candidates.length); i++) top += candidates[i]!;
    recall += intentProb[t]! * top;
  });
  return recall;
}

/** Walker/Vose alias table: O(1) draws from a discrete distribution. */
interface AliasTable {
  readonly accept: Float64Array;
  readonly alias: Int32Array;
}

/** Builds the alias table of the (possibly unnormalised) weights p. */
function aliasTable(p: Float64Array): AliasTable {
  const n = p.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += p[i]!;
  const scaled = p.map((x) => (x * n) / total);
  const accept = new Float64Array(n).fill(1);
  const alias = Int32Array.from({ length: n }, (_, i) => i);
  const small = new Int32Array(n);
  const large = new Int32Array(n);
  let ns = 0;
  let nl = 0;
  for (let i = 0; i < n; i++) {
    if (scaled[i]! < 1) small[ns++] = i;
    else large[nl++] = i;
  }
  while (ns > 0 && nl > 0) {
    const s = small[--ns]!;
    const l = large[nl - 1]!;
    accept[s] = scaled[s]!;
    alias[s] = l;
    scaled[l] = scaled[l]! + scaled[s]! - 1;
    if (scaled[l]! < 1) {
      nl--;
      small[ns++] = l;
    }
  }
  // Whatever is left is 1 up to rounding and keeps accept = 1.
  return { accept, alias };
}

/** One draw from an alias table. */
function drawAlias(table: AliasTable, rng: Rng): number {
  const i = rng.int(table.accept.length);
  return rng.next() < table.accept[i]! ? i : table.alias[i]!;
}

/**
 * Draws `clicks` i.i.d. click events from p(q)·p(s|q) and yields them aggregated, one row per distinct
 * (query, site) pair, by ascending query id then site id. Memory is O(N + M) whatever the number of clicks.
 */
export function* sampleClickRows(model: ClickLogModel, clicks: number, rng: Rng): Generator<ClickRow> {
  const { noise: eps, queryIntent, intentSites } = model;
  // Drawing the query of every click first and then each query's sites gives the same multinomial counts.
  const queryTable = aliasTable(model.queryProb);
  const perQuery = new Float64Array(model.queries.length);
  for (let i = 0; i < clicks; i++) perQuery[drawAlias(queryTable, rng)]!++;

  const intentTables = model.intentSiteProb.map(aliasTable);
  const noiseTable = aliasTable(model.noiseProb);
  const count = new Float64Array(model.sites.length);
  const touched = new Int32Array(model.sites.length);
  for (let q = 0; q < perQuery.length; q++) {
    const t = queryIntent[q]!;
    let distinct = 0;
    for (let i = 0; i < perQuery[q]!; i++) {
      const s = eps > 0 && rng.next() < eps ? drawAlias(noiseTable, rng) : intentSites[t]![drawAlias(intentTables[t]!, rng)]!;
      if (count[s] === 0) touched[distinct++] = s;
      count[s]!++;
    }
    const ids = touched.subarray(0, distinct).sort();
    for (const s of ids) {
      yield { query: q, site: s, clicks: count[s]! };
      count[s] = 0;
    }
  }
}

/** Seed of the click draws: a stream of its own, so that they do not replay the draws that built the model. */
function clickSeed(seed: number): number {
  return (Math.imul(seed ^ 0x5bd1e995, 0x27d4eb2d) ^ 0x165667b1) >>> 0;
}

/** Writes a file atomically: to a temporary name first, renamed into place once complete. */
async function writeAtomically(path: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await write(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Generates a click log and writes it as TSV `query<TAB>site<TAB>clicks` (gzip when `outPath` ends in
 * `.gz`), streamed, plus the metadata to `outPath + '.meta.json'`. Same options → byte-identical files.
 */
export async function writeSyntheticClickLog(outPath: string, options: SyntheticClickLogOptions): Promise<SyntheticClickLogMeta> {
  const resolved = resolveOptions(options);
  const model = buildClickLogModel(resolved);
  const gzip = outPath.endsWith('.gz');
  let rows = 0;
  async function* lines(): AsyncGenerator<string> {
    let chunk = '';
    for (const row of sampleClickRows(model, resolved.clicks, new Rng(clickSeed(resolved.seed)))) {
      chunk += `${model.queries[row.query]}\t${model.sites[row.site]}\t${row.clicks}\n`;
      rows++;
      if (chunk.length >= 1 << 16) {
        yield chunk;
        chunk = '';
      }
    }
    if (chunk.length > 0) yield chunk;
  }
  await mkdir(dirname(outPath), { recursive: true });
  await writeAtomically(outPath, (tmp) =>
    gzip ? pipeline(Readable.from(lines()), createGzip(), createWriteStream(tmp)) : pipeline(Readable.from(lines()), createWriteStream(tmp)),
  );
  const meta: SyntheticClickLogMeta = {
    generator: SYNTHETIC_GENERATOR,
    format: 'tsv',
    compression: gzip ? 'gzip' : 'none',
    seed: resolved.seed,
    queries: resolved.queries,
    sites: resolved.sites,
    intents: resolved.intents,
    noise: resolved.noise,
    zipf: resolved.zipf,
    clicks: resolved.clicks,
    rows,
    true_mi: trueMutualInformation(model),
    h_site: siteEntropy(model),
    h_intent: intentEntropy(model),
    oracle_recall_at_10: oracleRecallAtK(model, 10),
  };
  await writeAtomically(`${outPath}.meta.json`, (tmp) => writeFile(tmp, `${JSON.stringify(meta, null, 2)}\n`));
  return meta;
}

/** Sidecar fields that must be finite numbers when present. */
const NUMERIC_META_FIELDS = [
  'seed',
  'queries',
  'sites',
  'intents',
  'noise',
  'zipf',
  'clicks',
  'rows',
  'h_site',
  'h_intent',
  'oracle_recall_at_10',
] as const satisfies readonly (keyof SyntheticClickLogMeta)[];

/**
 * Reads the metadata sidecar `dataPath + '.meta.json'` of a click log; null when there is none.
 * A sidecar that is unreadable, not a JSON object, or without a finite `true_mi` is a UserError naming it.
 */
export async function readClickLogMeta(dataPath: string): Promise<ClickLogSidecar | null> {
  const path = `${dataPath}.meta.json`;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new UserError(`cannot read click-log metadata ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UserError(`click-log metadata ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UserError(`click-log metadata ${path} must be a JSON object`);
  }
  const record = parsed as Record<string, unknown>;
  if (typeof record.true_mi !== 'number' || !Number.isFinite(record.true_mi)) {
    throw new UserError(`click-log metadata ${path}: true_mi must be a finite number (got ${JSON.stringify(record.true_mi)})`);
  }
  for (const field of NUMERIC_META_FIELDS) {
    const v = record[field];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) {
      throw new UserError(`click-log metadata ${path}: ${field} must be a finite number (got ${JSON.stringify(v)})`);
    }
  }
  return record as ClickLogSidecar;
}
