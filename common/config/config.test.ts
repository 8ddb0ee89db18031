import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { UserError } from '../user-error.js';
import { CONFIG_FLAGS, defaultConfig, describeConfig, flagValue, loadConfig, resolveKind, validateConfig, type Config, type ConfigFlagName } from './mod.js';
import { tempDir } from '../../testing/test-helpers.js';

/** Writes `text` to a fresh config file and returns its path. */
function configFile(t: Parameters<typeof tempDir>[0], text: string): string {
  const path = join(tempDir(t), 'run.yaml');
  writeFileSync(path, text);
  return path;
}

/** The message of the UserError that `fn` throws. */
function captureUserError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof UserError) return err.message;
    throw err;
  }
  assert.fail('expected a UserError');
}

/** Asserts that `fn` throws a UserError whose message is exactly `message`. */
function throwsUser(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), `message is not one line: ${err.message}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

test('the derived type and the defaults round-trip: defaultConfig() is a complete config, in declaration order', () => {
  const config: Config = defaultConfig();
  assert.deepEqual(validateConfig(JSON.parse(JSON.stringify(config))), config);
  // JSON order is the order of the declarations (and of `infobound config`), as run directories store it.
  assert.deepEqual(Object.keys(config), [
    'kind',
    'data',
    'backend',
    'engine',
    'device',
    'seed',
    'run_dir',
    'train',
    'bank',
    'temperature',
    'clicklog',
    'images',
    'eval',
    'tls',
    'nats',
  ]);
  assert.deepEqual(Object.keys(config.images), ['hidden_dim', 'output_dim', 'channels', 'augment', 'max_train']);
});

test('the defaults are a valid config with the documented values', () => {
  const config = defaultConfig();
  assert.deepEqual(validateConfig(config), config);
  assert.deepEqual(loadConfig(), config);
  assert.equal(config.kind, 'auto');
  assert.equal(config.data, null);
  assert.equal(config.backend, 'wasm');
  assert.equal(config.train.steps, 600);
  assert.equal(config.train.max_grad_norm, 5);
  assert.equal(config.bank.size, 4096);
  assert.equal(config.clicklog.hash_buckets, 2 ** 17);
  assert.equal(config.clicklog.max_line_bytes, 2 ** 20);
  assert.equal(config.images.augment.erase, 0.25);
  assert.equal(config.eval.max_queries, 5000);
  // Each call is a fresh copy, so one caller's edits cannot leak into another's defaults.
  config.train.steps = 1;
  assert.equal(defaultConfig().train.steps, 600);
});

test('a YAML file sets nested fields and keeps the other defaults', (t) => {
  const path = configFile(
    t,
    [
      'kind: clicklog',
      'data: logs/clicks.tsv',
      'train:',
      '  steps: 50',
      '  lr: 1e-3',
      '  max_grad_norm: null',
      'bank: {size: 1024, in_batch_negatives: true}',
      'images:',
      '  augment:',
      '    flip: false',
      'eval:',
      '  # everything under a section may be commented out',
      '',
    ].join('\n'),
  );
  const config = loadConfig(path);
  const expected = defaultConfig();
  expected.kind = 'clicklog';
  expected.data = 'logs/clicks.tsv';
  expected.train.steps = 50;
  expected.train.lr = 0.001;
  expected.train.max_grad_norm = null;
  expected.bank.size = 1024;
  expected.bank.in_batch_negatives = true;
  expected.images.augment.flip = false;
  assert.deepEqual(config, expected);
});

test('an empty file is the defaults', (t) => {
  assert.deepEqual(loadConfig(configFile(t, '# nothing to change\n')), defaultConfig());
});

test('an unknown field is named with the closest known name', (t) => {
  const top = configFile(t, 'sede: 3\n');
  throwsUser(() => loadConfig(top), `config ${top}: unknown field "sede" (did you mean "seed"?)`);
  const nested = configFile(t, 'train:\n  stepz: 3\n');
  throwsUser(() => loadConfig(nested), `config ${nested}: unknown field "train.stepz" (did you mean "train.steps"?)`);
  const deep = configFile(t, 'images:\n  augment:\n    flipp: true\n');
  throwsUser(() => loadConfig(deep), `config ${deep}: unknown field "images.augment.flipp" (did you mean "images.augment.flip"?)`);
  const camel = configFile(t, 'train:\n  logEvery: 3\n');
  throwsUser(() => loadConfig(camel), `config ${camel}: unknown field "train.logEvery" (did you mean "train.log_every"?)`);
  // A field at the wrong level points to where it belongs.
  const misplaced = configFile(t, 'steps: 3\n');
  throwsUser(() => loadConfig(misplaced), `config ${misplaced}: unknown field "steps" (did you mean "train.steps"?)`);
  const far = configFile(t, 'bank:\n  colour: red\n');
  throwsUser(() => loadConfig(far), `config ${far}: unknown field "bank.colour"`);
});

test('values of the wrong type or out of range are rejected with the field and the rule', (t) => {
  const cases: [string, string][] = [
    ['bank:\n  size: 0', 'field "bank.size" must be an integer in [1, 1048576], got 0'],
    ['bank:\n  size: 1048577', 'field "bank.size" must be an integer in [1, 1048576], got 1048577'],
    ['train:\n  steps: 2.5', 'field "train.steps" must be an integer >= 1, got 2.5'],
    ['train:\n  steps: "100"', 'field "train.steps" must be an integer >= 1, got "100"'],
    ['train:\n  lr: 0', 'field "train.lr" must be a number > 0, got 0'],
    ['train:\n  lr: .inf', 'field "train.lr" must be a number > 0, got Infinity'],
    ['train:\n  mine_ema: 1.5', 'field "train.mine_ema" must be a number in (0, 1], got 1.5'],
    ['bank:\n  momentum: 1', 'field "bank.momentum" must be a number in [0, 1), got 1'],
    ['train:\n  max_grad_norm: -1', 'field "train.max_grad_norm" must be a number > 0 or null, got -1'],
    ['train:\n  batch: null', 'field "train.batch" must be an integer in [2, 65536], got null'],
    ['clicklog:\n  hash_buckets: 100000', 'field "clicklog.hash_buckets" must be a power of two in [1024, 16777216], got 100000'],
    ['clicklog:\n  hash_buckets: 512', 'field "clicklog.hash_buckets" must be a power of two in [1024, 16777216], got 512'],
    ['train:\n  objective: ce', 'field "train.objective" must be one of "infonce", "nwj", "dv", "mine", "jsd", got "ce"'],
    ['backend: gpu', 'field "backend" must be one of "wasm", "cpu", "tensorflow", "tensorflow-gpu", got "gpu"'],
    ['bank:\n  mask_accidental_hits: yes', 'field "bank.mask_accidental_hits" must be true or false, got "yes"'],
    ['data: 42', 'field "data" must be a non-empty string or null, got 42'],
    ['data: ""', 'field "data" must be a non-empty string or null, got ""'],
    ['train: 5', 'field "train" must be a mapping, got 5'],
    ['images:\n  augment: [1, 2]', 'field "images.augment" must be a mapping, got a list'],
    ['- 1\n- 2', 'must be a mapping of fields, got a list'],
  ];
  for (const [yaml, problem] of cases) {
    const path = configFile(t, yaml + '\n');
    throwsUser(() => loadConfig(path), `config ${path}: ${problem}`);
  }
});

test('a YAML syntax error is one line with the file and the line number', (t) => {
  const path = configFile(t, 'seed: 3\ntrain:\n  steps: 3\n   batch: 2\n');
  throwsUser(() => loadConfig(path), new RegExp(`^config ${path}: YAML syntax error at line 3, column \\d+: \\S`));
  const tabs = configFile(t, 'train:\n\tsteps: 3\n');
  throwsUser(() => loadConfig(tabs), new RegExp(`^config ${tabs}: YAML syntax error at line 2, column 1: Tabs`));
  const dup = configFile(t, 'seed: 1\nseed: 2\n');
  throwsUser(() => loadConfig(dup), new RegExp(`^config ${dup}: YAML syntax error at line 2, column 1: Map keys must be unique`));
});

test('a missing config file or a directory is a UserError', (t) => {
  const dir = tempDir(t);
  const missing = join(dir, 'nope.yaml');
  throwsUser(() => loadConfig(missing), `config ${missing}: file not found`);
  throwsUser(() => loadConfig(dir), `config ${dir}: is a directory, expected a YAML file`);
});

test('flag overrides win over the file and are checked with the flag name', (t) => {
  const path = configFile(t, 'kind: images\ndata: a\nbackend: cpu\ntrain:\n  steps: 50\n  batch: 64\nbank:\n  size: 8\n');
  const config = loadConfig(path, { data: 'b', kind: 'clicklog', steps: 7, batch: '32', 'bank-size': '1e3', backend: 'wasm' });
  assert.equal(config.data, 'b');
  assert.equal(config.kind, 'clicklog');
  assert.equal(config.train.steps, 7);
  assert.equal(config.train.batch, 32);
  assert.equal(config.bank.size, 1000);
  assert.equal(config.backend, 'wasm');
  // Flags left out keep the file's values.
  assert.equal(loadConfig(path, { steps: 9 }).train.batch, 64);

  throwsUser(() => loadConfig(path, { steps: 0 }), '--steps must be an integer >= 1, got 0');
  throwsUser(() => loadConfig(path, { steps: 'ten' }), '--steps must be an integer >= 1, got "ten"');
  throwsUser(() => loadConfig(path, { steps: '' }), '--steps must be an integer >= 1, got ""');
  throwsUser(() => loadConfig(undefined, { batch: '1' }), '--batch must be an integer in [2, 65536], got 1');
  throwsUser(() => loadConfig(undefined, { 'bank-size': 0 }), '--bank-size must be an integer in [1, 1048576], got 0');
  throwsUser(() => loadConfig(undefined, { kind: 'text' }), '--kind must be one of "auto", "clicklog", "images", got "text"');
  throwsUser(() => loadConfig(undefined, { backend: 'gpu' }), '--backend must be one of "wasm", "cpu", "tensorflow", "tensorflow-gpu", got "gpu"');
  throwsUser(() => loadConfig(undefined, { data: '' }), '--data must be a non-empty string or null, got ""');
  assert.equal(loadConfig(undefined, { nats: 'nats://127.0.0.1:4222' }).nats.url, 'nats://127.0.0.1:4222');
  // The fields declare their flags; the list is in the order of the fields.
  assert.deepEqual(
    Object.values(CONFIG_FLAGS).map((f) => f.flag),
    [
      '--kind',
      '--data',
      '--backend',
      '--engine',
      '--device',
      '--run-dir',
      '--steps',
      '--batch',
      '--resume',
      '--threads',
      '--bank-size',
      '--bank-mode',
      '--eval-queries',
      '--sites-sample',
      '--nats',
    ],
  );
  assert.equal(loadConfig(undefined, { 'sites-sample': '1000' }).eval.sites_sample, 1000);
  throwsUser(() => loadConfig(undefined, { 'sites-sample': '-1' }), '--sites-sample must be an integer >= 0, got -1');
});

test('a flag is checked exactly as the file field it replaces, with the flag named instead', (t) => {
  const cases: [ConfigFlagName, string, string][] = [
    ['bank-size', '0', 'bank: {size: 0}'],
    ['steps', '2.5', 'train: {steps: 2.5}'],
    ['batch', '1e6', 'train: {batch: 1000000}'],
    ['kind', 'text', 'kind: text'],
    ['backend', 'gpu', 'backend: gpu'],
    ['data', '', 'data: ""'],
    ['run-dir', '', 'run_dir: ""'],
    ['resume', '', 'train: {resume: ""}'],
    ['nats', '', 'nats: {url: ""}'],
  ];
  for (const [name, value, yaml] of cases) {
    const { flag, path } = CONFIG_FLAGS[name];
    const file = configFile(t, yaml + '\n');
    const fileError = captureUserError(() => loadConfig(file));
    const prefix = `config ${file}: field "${path}" `;
    assert.ok(fileError.startsWith(prefix), fileError);
    throwsUser(() => loadConfig(undefined, { [name]: value }), `${flag} ${fileError.slice(prefix.length)}`);
  }
});

test('--run-dir and --resume are validated like the file: an empty path is refused, a path is taken', () => {
  throwsUser(() => loadConfig(undefined, { 'run-dir': '' }), '--run-dir must be a non-empty string or null, got ""');
  throwsUser(() => loadConfig(undefined, { resume: '' }), '--resume must be a non-empty string or null, got ""');
  throwsUser(() => loadConfig(undefined, { resume: 3 }), '--resume must be a non-empty string or null, got 3');
  const config = loadConfig(undefined, { 'run-dir': 'runs/a', resume: 'runs/b/checkpoint.ibck' });
  assert.equal(config.run_dir, 'runs/a');
  assert.equal(config.train.resume, 'runs/b/checkpoint.ibck');
});

test('flagValue checks a value from elsewhere (an environment variable) under that name', () => {
  assert.equal(flagValue('backend', 'cpu', 'INFOBOUND_BACKEND'), 'cpu');
  assert.equal(flagValue('bank-size', '1e3'), 1000);
  throwsUser(() => flagValue('backend', 'gpu', 'INFOBOUND_BACKEND'), /^INFOBOUND_BACKEND must be one of "wasm", .*, got "gpu"$/);
});

test('validateConfig wants every field and names the origin', () => {
  const config = defaultConfig() as unknown as { train: Record<string, unknown> };
  delete config.train.steps;
  throwsUser(() => validateConfig(config), 'config: field "train.steps" is missing');
  throwsUser(() => validateConfig(null, 'ckpt.bin'), 'config ckpt.bin: must be a mapping of fields, got null');
  throwsUser(() => validateConfig({ ...defaultConfig(), extra: 1 }), 'config: unknown field "extra"');
});

test('resolveKind picks images for a directory, clicklog for a file, and checks the path', (t) => {
  const dir = tempDir(t);
  const idx = join(dir, 'idx');
  mkdirSync(idx);
  const log = join(dir, 'clicks.tsv');
  writeFileSync(log, 'q\tsite\t1\n');
  assert.equal(resolveKind({ kind: 'auto', data: idx }), 'images');
  assert.equal(resolveKind({ kind: 'auto', data: log }), 'clicklog');
  assert.equal(resolveKind({ kind: 'clicklog', data: log }), 'clicklog');
  assert.equal(resolveKind({ kind: 'images', data: null }), 'images');
  const missing = join(dir, 'missing.tsv');
  throwsUser(() => resolveKind({ kind: 'auto', data: missing }), `data "${missing}" does not exist`);
  throwsUser(() => resolveKind({ kind: 'clicklog', data: missing }), `data "${missing}" does not exist`);
  throwsUser(() => resolveKind({ kind: 'auto', data: null }), /^no data given/);
});

test('describeConfig is commented YAML that parses back to the defaults', () => {
  const text = describeConfig();
  assert.deepEqual(parse(text), defaultConfig());
  // Every field carries its documentation and the values it accepts.
  const lines = text.split('\n');
  /** The comment lines just above the line `entry`, joined into one text. */
  const commentAbove = (entry: string): string => {
    const at = lines.indexOf(entry);
    assert.ok(at > 0, `no line ${JSON.stringify(entry)}`);
    let start = at;
    while (/^\s*#/.test(lines[start - 1]!)) start--;
    return lines
      .slice(start, at)
      .map((l) => l.replace(/^\s*# /, ''))
      .join(' ');
  };
  assert.match(commentAbove('  size: 4096'), /^Keys K in the FIFO queue of negatives\..* Accepts an integer in \[1, 1048576\]\.$/);
  assert.equal(commentAbove('    flip: true'), 'Mirror left-right with probability 1/2. Accepts true or false.');
  assert.equal(commentAbove('train:'), 'Optimisation loop.');
  assert.match(commentAbove('  max_grad_norm: 5'), /Accepts a number > 0 or null\.$/);
  for (const [i, line] of lines.entries()) {
    assert.ok(line.length <= 100, `line longer than 100 columns: ${line}`);
    if (/^\s*[a-z_]+:/.test(line)) assert.match(lines[i - 1]!, /^\s*# /, `no comment above ${line}`);
  }
});
