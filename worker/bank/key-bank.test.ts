import test from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../common/random.js';
import { useTestBackend } from '../../testing/test-helpers.js';
import { KEY_AGE_BUCKETS } from '../../common/key-age-buckets.js';
import { KeyBank, type BankMessage } from './key-bank.js';

interface Entry {
  serial: number;
  id: number;
  step: number;
  key: number[];
}

/** A message of n keys; key j of serial s has values s + k/16 (distinct per serial), ids random in -1..5. */
function message(rng: Rng, firstSerial: number, n: number, dim: number, step: number, producer = 0): { msg: BankMessage; entries: Entry[] } {
  const keys = new Float32Array(n * dim);
  const ids = new Int32Array(n);
  const entries: Entry[] = [];
  for (let j = 0; j < n; j++) {
    const serial = firstSerial + j;
    const key = Array.from({ length: dim }, (_, k) => serial + k / 16);
    keys.set(key, j * dim);
    ids[j] = rng.int(7) - 1;
    entries.push({ serial, id: ids[j]!, step, key });
  }
  return { msg: { keys, ids, step, producer }, entries };
}

function slotKey(bank: KeyBank, s: number): number[] {
  return Array.from(bank.keys.subarray(s * bank.dim, (s + 1) * bank.dim));
}

/** Checks the ring against the list of everything enqueued so far (FIFO of the last K). */
function checkRing(bank: KeyBank, history: Entry[], atStep: number): void {
  const K = bank.capacity;
  const live = history.slice(Math.max(0, history.length - K));
  assert.equal(bank.filled, live.length, 'filled');
  // Slot order: oldest at `head` when full, slots 0..filled-1 in order while filling.
  const start = bank.filled < K ? 0 : bank.head;
  if (bank.filled < K) assert.equal(bank.head, bank.filled, 'head while filling');
  live.forEach((e, i) => {
    const s = (start + i) % K;
    assert.equal(bank.ids[s], e.id, `slot ${s} id`);
    assert.equal(bank.steps[s], e.step, `slot ${s} step`);
    assert.deepEqual(slotKey(bank, s), e.key, `slot ${s} should hold key #${e.serial}`);
  });
  // The set of (id, key) pairs in the ring equals the last K enqueued.
  const ring = new Set<string>();
  for (let s = 0; s < bank.filled; s++) ring.add(`${bank.ids[s]}|${slotKey(bank, s).join(',')}`);
  assert.deepEqual(ring, new Set(live.map((e) => `${e.id}|${e.key.join(',')}`)));
  // Empty slots stay empty.
  for (let s = bank.filled; s < K; s++) assert.equal(bank.ids[s], -1, `empty slot ${s}`);
  // Mean age of the keys held.
  const age = live.length === 0 ? 0 : live.reduce((a, e) => a + (atStep - e.step), 0) / live.length;
  assert.ok(Math.abs(bank.meanKeyAge(atStep) - age) < 1e-12, `meanKeyAge ${bank.meanKeyAge(atStep)} vs ${age}`);
}

test('FIFO of the last K keys with K not a multiple of the message size', () => {
  const rng = new Rng(1);
  const K = 10;
  const d = 3;
  const bank = new KeyBank(K, d);
  const history: Entry[] = [];
  checkRing(bank, history, 0);
  let serial = 0;
  // Messages of 4 keys, then an empty one, an oversized one (23 > K, from a non-zero head), exactly K, and more 4s.
  const sizes = [4, 4, 4, 4, 4, 0, 4, 23, 4, 10, 4, 4, 4, 7, 4];
  sizes.forEach((n, i) => {
    const step = i + 1;
    const { msg, entries } = message(rng, serial, n, d, step);
    serial += n;
    bank.enqueue(msg);
    history.push(...entries);
    checkRing(bank, history, step + 2);
  });
});

test('a message larger than K keeps its last K keys', () => {
  const rng = new Rng(2);
  const bank = new KeyBank(10, 2);
  const { msg } = message(rng, 100, 3, 2, 1);
  bank.enqueue(msg);
  const big = message(rng, 0, 25, 2, 2);
  bank.enqueue(big.msg);
  assert.equal(bank.filled, 10);
  const held = new Set<number>();
  for (let s = 0; s < 10; s++) held.add(bank.keys[s * 2]!);
  assert.deepEqual(held, new Set(Array.from({ length: 10 }, (_, i) => 15 + i)), 'serials 15..24 held');
  // The oldest of them sits at head, the newest just before it.
  assert.equal(bank.keys[bank.head * 2], 15);
  assert.equal(bank.keys[((bank.head + 9) % 10) * 2], 24);
});

test('a message whose key array does not match its ids is refused with a RangeError and changes nothing', () => {
  const bank = new KeyBank(10, 4);
  const rng = new Rng(3);
  bank.enqueue(message(rng, 0, 4, 4, 1).msg);
  const before = bank.digest();
  assert.throws(() => bank.enqueue({ keys: new Float32Array(4 * 4 - 1), ids: new Int32Array(4), step: 2, producer: 0 }), RangeError);
  assert.throws(() => bank.enqueue({ keys: new Float32Array(3 * 4), ids: new Int32Array(4), step: 2, producer: 0 }), RangeError);
  assert.throws(
    () => bank.enqueue({ keys: new Float32Array(4 * 3), ids: new Int32Array(4), step: 2, producer: 0 }),
    RangeError,
    'keys of dim 3 in a dim-4 bank',
  );
  assert.equal(bank.digest(), before);
  assert.equal(bank.filled, 4);
  assert.equal(bank.head, 4);
});

test('digest: equal for banks fed the same messages, different after one differing key or id', () => {
  const feed = (tweak: (m: BankMessage, i: number) => void) => {
    const rng = new Rng(4);
    const bank = new KeyBank(10, 3);
    let serial = 0;
    for (let i = 0; i < 6; i++) {
      const { msg } = message(rng, serial, 4, 3, i + 1);
      serial += 4;
      tweak(msg, i);
      bank.enqueue(msg);
    }
    return bank.digest();
  };
  const a = feed(() => {});
  assert.match(a, /^[0-9a-f]+$/);
  assert.equal(
    feed(() => {}),
    a,
  );
  assert.notEqual(
    feed((m, i) => {
      if (i === 5) m.keys[7] = Math.fround(m.keys[7]! + 1e-3);
    }),
    a,
    'one key value differs',
  );
  assert.notEqual(
    feed((m, i) => {
      if (i === 4) m.ids[1] = m.ids[1]! + 100;
    }),
    a,
    'one id differs',
  );
  // A key that already left the ring does not matter.
  assert.equal(
    feed((m, i) => {
      if (i === 0) m.keys[0] = 1234;
    }),
    a,
  );
});

test('restore round trip reproduces the ring, ages and future behaviour', () => {
  const rng = new Rng(5);
  const a = new KeyBank(10, 3);
  let serial = 0;
  for (let i = 0; i < 4; i++) {
    const { msg } = message(rng, serial, 4, 3, i + 1);
    serial += 4;
    a.enqueue(msg);
  }
  const b = new KeyBank(10, 3);
  b.restore(a.keys.slice(), a.ids.slice(), a.steps.slice(), a.head, a.filled);
  assert.equal(b.digest(), a.digest());
  assert.deepEqual(Array.from(b.keys), Array.from(a.keys));
  assert.deepEqual(Array.from(b.steps), Array.from(a.steps));
  assert.equal(b.head, a.head);
  assert.equal(b.filled, a.filled);
  assert.equal(b.meanKeyAge(9), a.meanKeyAge(9));
  for (let i = 0; i < 3; i++) {
    const { msg } = message(rng, serial, 4, 3, 10 + i);
    serial += 4;
    a.enqueue(msg);
    b.enqueue({ ...msg, keys: msg.keys.slice(), ids: msg.ids.slice() });
    assert.equal(b.digest(), a.digest());
    assert.deepEqual(Array.from(b.keys), Array.from(a.keys));
  }
  // A partially filled bank restores too.
  const c = new KeyBank(10, 3);
  c.enqueue(message(rng, 0, 4, 3, 1).msg);
  const d = new KeyBank(10, 3);
  d.restore(c.keys, c.ids, c.steps, c.head, c.filled);
  assert.equal(d.digest(), c.digest());
  assert.equal(d.meanKeyAge(3), 2);
  // Shape mismatches are refused.
  assert.throws(() => d.restore(new Float32Array(33), c.ids, c.steps, 0, 0), RangeError);
  assert.throws(() => d.restore(c.keys, new Int32Array(11), c.steps, 0, 0), RangeError);
});

test('meanKeyAge of an empty bank is 0', () => {
  assert.equal(new KeyBank(5, 2).meanKeyAge(7), 0);
});

test('tensors() gives the ring as K×d and d×K tensors (empty slots are zeros)', async () => {
  await useTestBackend();
  const rng = new Rng(6);
  const bank = new KeyBank(10, 3);
  bank.enqueue(message(rng, 1, 7, 3, 1).msg);
  const { keys, keysT } = bank.tensors();
  try {
    assert.deepEqual(keys.shape, [10, 3]);
    assert.deepEqual(keysT.shape, [3, 10]);
    const kv = keys.dataSync();
    const tv = keysT.dataSync();
    for (let s = 0; s < 10; s++) {
      for (let k = 0; k < 3; k++) {
        const expected = s < 7 ? 1 + s + k / 16 : 0;
        assert.equal(kv[s * 3 + k], expected, `keys[${s}][${k}]`);
        assert.equal(tv[k * 10 + s], expected, `keysT[${k}][${s}]`);
      }
    }
  } finally {
    keys.dispose();
    keysT.dispose();
  }
});

test('K = 65,536 keys of 128 dims fed in batches of 300 keys', () => {
  const K = 65_536;
  const d = 128;
  const B = 300;
  const bank = new KeyBank(K, d);
  const batches = Math.ceil(K / B); // 219 batches = 65,700 keys: the ring wraps by 164
  const total = batches * B;
  const keys = new Float32Array(B * d);
  const ids = new Int32Array(B);
  for (let t = 0; t < batches; t++) {
    for (let j = 0; j < B; j++) {
      const id = t * B + j;
      ids[j] = id;
      for (let k = 0; k < d; k++) keys[j * d + k] = (id % 4096) + k / 128;
    }
    bank.enqueue({ keys, ids, step: t, producer: 0 });
    if (t === Math.floor(K / B) - 1) assert.equal(bank.filled, (t + 1) * B, 'still filling');
  }
  assert.equal(bank.filled, K);
  const wrap = total - K;
  assert.equal(bank.head, wrap);
  // Slot s holds the last key written there: ids wrap..K-1 in slots wrap..K-1, then K..total-1 in slots 0..wrap-1.
  for (let s = 0; s < K; s++) {
    const expected = s < wrap ? K + s : s;
    if (bank.ids[s] !== expected) assert.fail(`slot ${s} holds id ${bank.ids[s]}, expected ${expected}`);
  }
  const oldest = bank.head;
  const newest = (bank.head + K - 1) % K;
  assert.equal(bank.ids[oldest], total - K);
  assert.equal(bank.ids[newest], total - 1);
  for (const s of [oldest, newest, 0, K - 1]) {
    const id = bank.ids[s]!;
    for (let k = 0; k < d; k++) {
      const v = (id % 4096) + k / 128;
      if (bank.keys[s * d + k] !== v) assert.fail(`slot ${s} dim ${k}: ${bank.keys[s * d + k]} vs ${v}`);
    }
  }
  assert.equal(bank.steps[oldest], Math.floor((total - K) / B));
  assert.equal(bank.steps[newest], batches - 1);
});

test('restore refuses a checkpoint whose steps, head or filled do not fit the ring', () => {
  const K = 10;
  const keys = new Float32Array(K * 2);
  const ids = new Int32Array(K).fill(-1);
  const steps = new Int32Array(K).fill(-1);
  const bad: Array<[string, () => void]> = [
    ['steps of length 9', () => new KeyBank(K, 2).restore(keys, ids, new Int32Array(9), 0, 0)],
    ['head = K', () => new KeyBank(K, 2).restore(keys, ids, steps, K, K)],
    ['head = -1', () => new KeyBank(K, 2).restore(keys, ids, steps, -1, K)],
    ['head = 2.5', () => new KeyBank(K, 2).restore(keys, ids, steps, 2.5, K)],
    ['filled = K + 1', () => new KeyBank(K, 2).restore(keys, ids, steps, 0, K + 1)],
    ['filled = -3', () => new KeyBank(K, 2).restore(keys, ids, steps, 0, -3)],
    // While filling, keys occupy slots 0..filled-1 and head == filled (logitBias masks slots >= filled).
    ['head 7 with filled 3', () => new KeyBank(K, 2).restore(keys, ids, steps, 7, 3)],
  ];
  const accepted = bad.filter(([, f]) => {
    try {
      f();
      return true;
    } catch (e) {
      return !(e instanceof RangeError);
    }
  });
  assert.deepEqual(
    accepted.map(([name]) => name),
    [],
    'key-bank.ts restore() only checks keys/ids lengths; these corrupt checkpoints were accepted without a RangeError',
  );
  // Valid states are accepted.
  new KeyBank(K, 2).restore(keys, ids, steps, 3, 3);
  new KeyBank(K, 2).restore(keys, ids, steps, 7, K);
});

test('digest: a bank fed only the last K keys equals one fed the whole history, wherever its ring starts', () => {
  const rng = new Rng(6);
  const msgs = Array.from({ length: 7 }, (_, i) => message(rng, i * 4, 4, 3, i + 1).msg);
  const full = new KeyBank(10, 3);
  for (const m of msgs) full.enqueue(m);
  const tail = new KeyBank(10, 3);
  tail.enqueue(message(rng, 100, 4, 3, 1).msg);
  tail.clear();
  assert.equal(tail.filled, 0);
  // The last 10 keys are in the last three messages (12 keys): the oldest two are overwritten.
  for (const m of msgs.slice(-3)) tail.enqueue(m);
  assert.notEqual(tail.head, full.head);
  assert.equal(tail.digest(), full.digest());
  tail.enqueue(msgs[0]!);
  assert.notEqual(tail.digest(), full.digest());
});

test('key ages: counts per bucket of steps since each key was produced', () => {
  const rng = new Rng(7);
  const bank = new KeyBank(12, 3);
  for (const step of [1, 5, 9]) bank.enqueue(message(rng, step * 10, 4, 3, step).msg);
  // At step 10 the keys are 9, 5 and 1 steps old, four of each.
  const counts = bank.keyAgeCounts(10);
  assert.equal(counts.length, KEY_AGE_BUCKETS.length + 1);
  assert.deepEqual(counts.slice(0, 5), [4, 0, 0, 4, 4]);
  assert.equal(
    counts.reduce((a, b) => a + b, 0),
    12,
  );
  assert.equal(bank.keyAgeCounts(2000).at(-1), 12, 'older than the last bound');
});
