import test from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../common/user-error.js';
import { environmentOverrides, configFlagOptions, configFlagUsage, portNumber, positiveInt, usageLine } from './parse-flags.js';

test('the backend and device come from their flags, else INFOBOUND_BACKEND / INFOBOUND_DEVICE, else the config', () => {
  const env = { INFOBOUND_BACKEND: 'tensorflow-gpu', INFOBOUND_DEVICE: 'cuda' };
  assert.deepEqual(environmentOverrides({ backend: 'cpu', device: 'cpu' }, env), { backend: 'cpu', device: 'cpu' });
  assert.deepEqual(environmentOverrides({}, env), { backend: 'tensorflow-gpu', device: 'cuda' });
  assert.deepEqual(environmentOverrides({ device: 'webgpu' }, env), { backend: 'tensorflow-gpu', device: 'webgpu' });
  assert.deepEqual(environmentOverrides({}, {}), {});
  assert.deepEqual(environmentOverrides({}, { INFOBOUND_BACKEND: '', INFOBOUND_DEVICE: '' }), {});
  assert.throws(
    () => environmentOverrides({}, { INFOBOUND_BACKEND: 'gpu' }),
    (e: Error) => e instanceof UserError && /^INFOBOUND_BACKEND must be one of "wasm", .* got "gpu"$/.test(e.message),
  );
  assert.throws(
    () => environmentOverrides({}, { INFOBOUND_DEVICE: 'tpu' }),
    (e: Error) => e instanceof UserError && /^INFOBOUND_DEVICE must be one of "cpu", "webgpu", "cuda", got "tpu"$/.test(e.message),
  );
});

test('port flags are integers in [0, 65535], named in the error', () => {
  assert.equal(portNumber('--port', '0'), 0);
  assert.equal(portNumber('--metrics-port', '9400'), 9400);
  for (const bad of ['70000', '-1', '1.5', 'http'])
    assert.throws(
      () => portNumber('--peer-port', bad),
      (e: Error) => e instanceof UserError && e.message === `--peer-port must be a port number in [0, 65535], got "${bad}"`,
    );
});

test('positiveInt names the flag and its minimum', () => {
  assert.equal(positiveInt('--port', '0', 0), 0);
  assert.equal(positiveInt('--workers', '3'), 3);
  assert.throws(() => positiveInt('--workers', '0'), /^UserError|--workers must be an integer >= 1, got "0"/);
  assert.throws(() => positiveInt('--metrics-port', 'x', 0), /--metrics-port must be an integer >= 0, got "x"/);
});

test('config flags come from the fields: each takes a value, and its usage shows what', () => {
  assert.deepEqual(configFlagOptions(['bank-size', 'run-dir']), { 'bank-size': { type: 'string' }, 'run-dir': { type: 'string' } });
  assert.deepEqual(configFlagUsage(['bank-size', 'kind', 'resume']), ['[--bank-size K]', '[--kind auto|clicklog|images]', '[--resume CHECKPOINT]']);
});

test('a usage line wraps at 100 columns, continuing under the first flag', () => {
  const words = Array.from({ length: 12 }, (_, i) => `[--flag-${i} VALUE]`);
  const lines = usageLine('train', words).split('\n');
  assert.ok(lines.length > 1);
  assert.equal(lines.join(' ').replace(/ +/g, ' '), `usage: infobound train ${words.join(' ')}`);
  for (const line of lines) assert.ok(line.length <= 100, line);
  for (const line of lines.slice(1)) assert.equal(line.indexOf('['), 'usage: infobound train '.length);
});
