import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { UserError } from './user-error.js';
import { Rng } from './random.js';
import {
  GENERIC_WORDS,
  buildClickLogModel,
  intentEntropy,
  oracleRecallAtK,
  readClickLogMeta,
  sampleClickRows,
  siteEntropy,
  trueMutualInformation,
  writeSyntheticClickLog,
  type ClickLogModel,
} from './synthetic-clicklog.js';
import { tempDir } from '../testing/test-helpers.js';

const TINY = { queries: 12, sites: 6, intents: 3, seed: 7 } as const;

/** Dense p(s|q) for every query, built straight from the model's fields. */
function conditionals(model: ClickLogModel): number[][] {
  return model.queries.map((_, q) => {
    const t = model.queryIntent[q]!;
    const row = Array.from(model.noiseProb, (n) => model.noise * n);
    model.intentSites[t]!.forEach((s, j) => (row[s]! += (1 - model.noise) * model.intentSiteProb[t]![j]!));
    return row;
  });
}

/** p(s) = Σ_q p(q) p(s|q). */
function marginal(model: ClickLogModel, cond: number[][]): number[] {
  return model.sites.map((_, s) => cond.reduce((acc, row, q) => acc + model.queryProb[q]! * row[s]!, 0));
}

/** I(Q;S) by summing over every (q, s) pair. */
function bruteForceMi(model: ClickLogModel): number {
  const cond = conditionals(model);
  const ps = marginal(model, cond);
  let mi = 0;
  cond.forEach((row, q) => row.forEach((p, s) => (mi += p > 0 ? model.queryProb[q]! * p * Math.log(p / ps[s]!) : 0)));
  return mi;
}

function entropyOf(p: ArrayLike<number>): number {
  return -Array.from(p).reduce((h, x) => h + (x > 0 ? x * Math.log(x) : 0), 0);
}

test('true MI equals brute-force summation over every (query, site) pair', () => {
  for (const noise of [0, 0.1, 0.5]) {
    for (const seed of [1, 2, 3]) {
      const model = buildClickLogModel({ ...TINY, seed, noise });
      assert.ok(Math.abs(trueMutualInformation(model) - bruteForceMi(model)) < 1e-9, `noise ${noise} seed ${seed}`);
    }
  }
  const model = buildClickLogModel({ queries: 40, sites: 25, intents: 5, seed: 4, zipf: 1.7 });
  assert.ok(Math.abs(trueMutualInformation(model) - bruteForceMi(model)) < 1e-9);
});

test('probabilities are normalised and every intent has queries and sites', () => {
  const model = buildClickLogModel({ queries: 300, sites: 70, seed: 5 });
  assert.equal(model.intents, 7);
  const sum = (a: ArrayLike<number>) => Array.from(a).reduce((x, y) => x + y, 0);
  assert.ok(Math.abs(sum(model.queryProb) - 1) < 1e-12);
  assert.ok(Math.abs(sum(model.noiseProb) - 1) < 1e-12);
  assert.ok(Math.abs(sum(model.intentProb) - 1) < 1e-12);
  for (let t = 0; t < model.intents; t++) {
    assert.ok(model.intentSites[t]!.length >= 1);
    assert.ok(Math.abs(sum(model.intentSiteProb[t]!) - 1) < 1e-12);
    assert.ok(model.intentSites[t]!.every((s) => model.siteIntent[s] === t));
    assert.ok(model.queryIntent.includes(t));
  }
});

test('MI is between 0 and min(H(Q), H(S)), vanishes with pure noise and grows as noise falls', () => {
  for (const seed of [1, 2, 3, 4]) {
    const model = buildClickLogModel({ ...TINY, seed });
    const mi = trueMutualInformation(model);
    assert.ok(mi > 0);
    assert.ok(mi <= Math.min(entropyOf(model.queryProb), siteEntropy(model)) + 1e-12);
    assert.ok(mi <= intentEntropy(model) + 1e-12);
    const cond = conditionals(model);
    const ps = marginal(model, cond);
    assert.ok(Math.abs(siteEntropy(model) - entropyOf(ps)) < 1e-12);
  }
  const miAt = (noise: number) => trueMutualInformation(buildClickLogModel({ queries: 200, sites: 50, seed: 9, noise }));
  assert.ok(miAt(0.999) < 1e-4, `${miAt(0.999)}`);
  assert.ok(miAt(0) > miAt(0.1) && miAt(0.1) > miAt(0.5) && miAt(0.5) > miAt(0.9));
  // One site per intent and no noise: the site reveals the intent, so I(Q;S) = H(T).
  const exact = buildClickLogModel({ queries: 30, sites: 5, intents: 5, noise: 0, seed: 3 });
  assert.ok(Math.abs(trueMutualInformation(exact) - intentEntropy(exact)) < 1e-12);
  assert.ok(Math.abs(trueMutualInformation(exact) - entropyOf(exact.intentProb)) < 1e-12);
});

test('oracle recall@k equals brute force, grows with k and reaches 1 at k = sites', () => {
  for (const noise of [0, 0.1, 0.6]) {
    const model = buildClickLogModel({ ...TINY, noise });
    const cond = conditionals(model);
    let previous = 0;
    for (let k = 1; k <= model.sites.length; k++) {
      const brute = cond.reduce((acc, row, q) => {
        const top = [...row].sort((a, b) => b - a).slice(0, k);
        return acc + model.queryProb[q]! * top.reduce((x, y) => x + y, 0);
      }, 0);
      const recall = oracleRecallAtK(model, k);
      assert.ok(Math.abs(recall - brute) < 1e-12, `noise ${noise} k ${k}: ${recall} vs ${brute}`);
      assert.ok(recall >= previous - 1e-15);
      previous = recall;
    }
    assert.ok(Math.abs(oracleRecallAtK(model, model.sites.length) - 1) < 1e-12);
    assert.ok(Math.abs(oracleRecallAtK(model, 1000) - 1) < 1e-12);
  }
  assert.throws(() => oracleRecallAtK(buildClickLogModel(TINY), 0), UserError);
});

test('a large sample matches p(s), p(q) and, by plug-in estimate, the true MI', () => {
  const model = buildClickLogModel({ queries: 150, sites: 40, seed: 11 });
  const clicks = 400_000;
  const joint = new Map<number, number>();
  const perQuery = new Float64Array(model.queries.length);
  const perSite = new Float64Array(model.sites.length);
  let total = 0;
  let lastKey = -1;
  for (const row of sampleClickRows(model, clicks, new Rng(3))) {
    const key = row.query * model.sites.length + row.site;
    assert.ok(key > lastKey, 'rows are distinct and ordered by (query, site)');
    lastKey = key;
    assert.ok(row.clicks >= 1);
    joint.set(key, row.clicks);
    perQuery[row.query]! += row.clicks;
    perSite[row.site]! += row.clicks;
    total += row.clicks;
  }
  assert.equal(total, clicks);

  const cond = conditionals(model);
  const ps = marginal(model, cond);
  // Multinomial counts: each within 5 standard deviations of its expectation.
  ps.forEach((p, s) => assert.ok(Math.abs(perSite[s]! - clicks * p) <= 5 * Math.sqrt(clicks * p * (1 - p)) + 1, `site ${s}`));
  model.queryProb.forEach((p, q) => assert.ok(Math.abs(perQuery[q]! - clicks * p) <= 5 * Math.sqrt(clicks * p * (1 - p)) + 1, `query ${q}`));

  let plugin = 0;
  for (const [key, n] of joint) {
    const q = Math.floor(key / model.sites.length);
    const s = key % model.sites.length;
    plugin += (n / total) * Math.log((n * total) / (perQuery[q]! * perSite[s]!));
  }
  const mi = trueMutualInformation(model);
  // The plug-in estimate is biased upward by about (|Q| − 1)(|S| − 1) / 2C ≈ 0.007 nats here.
  assert.ok(plugin > mi - 0.01 && plugin < mi + 0.03, `plug-in ${plugin} vs true ${mi}`);
});

test('queries and sites are distinct, and site names share vocabulary with their intent', () => {
  for (const options of [
    { queries: 500, sites: 80, seed: 2 },
    { queries: 3000, sites: 4, intents: 2, seed: 5 },
  ]) {
    const model = buildClickLogModel(options);
    assert.equal(new Set(model.queries).size, options.queries);
    assert.equal(new Set(model.sites).size, options.sites);
    const generic = new Set<string>(GENERIC_WORDS);
    const owner = new Map<string, number>();
    model.intentWords.forEach((words, t) => {
      assert.ok(words.length >= 6);
      for (const w of words) {
        assert.match(w, /^[a-z]+$/);
        assert.ok(!generic.has(w) && !owner.has(w), `word ${w} is unique to one intent`);
        owner.set(w, t);
      }
    });
    const queryWords = model.intentWords.map(() => new Set<string>());
    model.queries.forEach((query, q) => {
      const words = query.split(' ');
      assert.ok(words.length >= 1 && words.every((w) => generic.has(w) || owner.get(w) === model.queryIntent[q]));
      assert.ok(
        words.some((w) => owner.get(w) === model.queryIntent[q]),
        `query "${query}" has a word of its intent`,
      );
      words.forEach((w) => queryWords[model.queryIntent[q]!]!.add(w));
    });
    model.sites.forEach((site, s) => {
      assert.match(site, /^[a-z]+(-[a-z]+)+\.[a-z]+$/);
      const words = site.slice(0, site.lastIndexOf('.')).split('-');
      assert.ok(
        words.some((w) => queryWords[model.siteIntent[s]!]!.has(w)),
        `site ${site} shares a word with its intent's queries`,
      );
      assert.ok(words.every((w) => owner.get(w) === undefined || owner.get(w) === model.siteIntent[s]));
    });
  }
});

test('writes the TSV and its sidecar deterministically; gzip holds the same bytes', async (t) => {
  const dir = tempDir(t);
  const options = { queries: 400, sites: 60, seed: 21, clicks: 5000 };
  const meta = await writeSyntheticClickLog(join(dir, 'a.tsv'), options);
  await writeSyntheticClickLog(join(dir, 'b.tsv'), options);
  const gz = await writeSyntheticClickLog(join(dir, 'sub', 'c.tsv.gz'), options);
  const other = await writeSyntheticClickLog(join(dir, 'd.tsv'), { ...options, seed: 22 });

  const text = readFileSync(join(dir, 'a.tsv'));
  assert.deepEqual(readFileSync(join(dir, 'b.tsv')), text);
  assert.deepEqual(readFileSync(join(dir, 'b.tsv.meta.json')), readFileSync(join(dir, 'a.tsv.meta.json')));
  assert.deepEqual(gunzipSync(readFileSync(join(dir, 'sub', 'c.tsv.gz'))), text);
  assert.notDeepEqual(readFileSync(join(dir, 'd.tsv')), text);
  assert.notEqual(other.true_mi, meta.true_mi);

  const model = buildClickLogModel(options);
  const queries = new Set(model.queries);
  const sites = new Set(model.sites);
  const lines = text.toString('utf8').trimEnd().split('\n');
  let clicks = 0;
  for (const line of lines) {
    const [query, site, count, ...rest] = line.split('\t');
    assert.equal(rest.length, 0);
    assert.ok(queries.has(query!) && sites.has(site!), line);
    assert.match(count!, /^[1-9][0-9]*$/);
    clicks += Number(count);
  }
  assert.equal(new Set(lines.map((l) => l.split('\t').slice(0, 2).join('\t'))).size, lines.length);

  assert.equal(meta.rows, lines.length);
  assert.equal(meta.clicks, 5000);
  assert.equal(clicks, 5000);
  assert.deepEqual(
    { generator: meta.generator, format: meta.format, compression: meta.compression, queries: meta.queries, sites: meta.sites },
    { generator: 'infobound-synthetic-v1', format: 'tsv', compression: 'none', queries: 400, sites: 60 },
  );
  assert.deepEqual({ intents: meta.intents, noise: meta.noise, zipf: meta.zipf, seed: meta.seed }, { intents: 6, noise: 0.1, zipf: 1, seed: 21 });
  assert.equal(meta.true_mi, trueMutualInformation(model));
  assert.equal(meta.oracle_recall_at_10, oracleRecallAtK(model, 10));
  assert.equal(gz.compression, 'gzip');
  assert.deepEqual({ ...gz, compression: 'none' }, meta);
  assert.deepEqual(await readClickLogMeta(join(dir, 'a.tsv')), meta);
  assert.deepEqual(await readClickLogMeta(join(dir, 'sub', 'c.tsv.gz')), gz);
});

test('default clicks are 20 per query', async (t) => {
  const meta = await writeSyntheticClickLog(join(tempDir(t), 'x.tsv'), { queries: 50, sites: 9 });
  assert.equal(meta.clicks, 1000);
  assert.equal(meta.seed, 1);
  assert.equal(meta.intents, 2);
});

test('readClickLogMeta: null without sidecar, UserError naming a malformed one', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'log.tsv');
  assert.equal(await readClickLogMeta(data), null);
  const sidecar = `${data}.meta.json`;
  const expectBad = async (content: string, pattern: RegExp) => {
    writeFileSync(sidecar, content);
    await assert.rejects(readClickLogMeta(data), (err: Error) => {
      assert.ok(err instanceof UserError);
      assert.ok(err.message.includes(sidecar), err.message);
      assert.match(err.message, pattern);
      return true;
    });
  };
  await expectBad('{"true_mi": 1.2', /not valid JSON/);
  await expectBad('[1, 2]', /JSON object/);
  await expectBad('{"rows": 3}', /true_mi must be a finite number/);
  await expectBad('{"true_mi": "1.5"}', /true_mi must be a finite number/);
  await expectBad('{"true_mi": 1.5, "oracle_recall_at_10": null}', /oracle_recall_at_10/);
  writeFileSync(sidecar, '{"true_mi": 0.25}');
  assert.deepEqual(await readClickLogMeta(data), { true_mi: 0.25 });
});

test('invalid options are UserErrors naming the field', () => {
  const cases: [Parameters<typeof buildClickLogModel>[0], RegExp][] = [
    [{ queries: 0, sites: 5 }, /queries/],
    [{ queries: 2.5, sites: 5 }, /queries/],
    [{ queries: 10, sites: -1 }, /sites/],
    [{ queries: 10, sites: 5, intents: 0 }, /intents/],
    [{ queries: 3, sites: 5, intents: 4 }, /intents \(4\) must not exceed queries/],
    [{ queries: 10, sites: 5, intents: 6 }, /intents \(6\) must not exceed sites/],
    [{ queries: 10, sites: 5, clicks: 0 }, /clicks/],
    [{ queries: 10, sites: 5, noise: 1 }, /noise/],
    [{ queries: 10, sites: 5, noise: -0.1 }, /noise/],
    [{ queries: 10, sites: 5, noise: Number.NaN }, /noise/],
    [{ queries: 10, sites: 5, zipf: -1 }, /zipf/],
    [{ queries: 10, sites: 5, seed: -1 }, /seed/],
    [{ queries: 10, sites: 5, seed: 1.5 }, /seed/],
  ];
  for (const [options, pattern] of cases) {
    assert.throws(
      () => buildClickLogModel(options),
      (err: Error) => err instanceof UserError && pattern.test(err.message),
      JSON.stringify(options),
    );
  }
});

test('scales: 100k queries x 10k sites x 2M clicks', () => {
  const model = buildClickLogModel({ queries: 100_000, sites: 10_000, seed: 1 });
  assert.equal(model.intents, 1000);
  assert.ok(trueMutualInformation(model) > 0);
  assert.ok(oracleRecallAtK(model, 10) < 1);
  let clicks = 0;
  for (const row of sampleClickRows(model, 2_000_000, new Rng(1))) clicks += row.clicks;
  assert.equal(clicks, 2_000_000);
});
