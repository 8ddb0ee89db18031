import test from 'node:test';
import assert from 'node:assert/strict';
import { EpochStream } from './epoch-stream.js';

function draw(s: EpochStream, batches: number[]): number[] {
  const out: number[] = [];
  for (const b of batches) {
    const x = s.next(b);
    assert.equal(x.length, b);
    out.push(...x);
  }
  return out;
}

function assertPermutation(xs: number[], n: number, label: string): void {
  assert.equal(xs.length, n, `${label}: length`);
  const sorted = [...xs].sort((a, b) => a - b);
  assert.deepEqual(sorted, Array.from({ length: n }, (_, i) => i), `${label}: not every index exactly once`);
}

test('every index exactly once per epoch, with batches straddling epoch boundaries', () => {
  const n = 37;
  for (const batch of [10, 36, 37, 38, 100]) {
    const s = new EpochStream(n, 5);
    const seq = draw(s, new Array(12).fill(batch));
    const epochs = Math.floor(seq.length / n);
    for (let e = 0; e < epochs; e++) assertPermutation(seq.slice(e * n, (e + 1) * n), n, `batch ${batch}, epoch ${e}`);
    // The unfinished epoch has no repeats either.
    const rest = seq.slice(epochs * n);
    assert.equal(new Set(rest).size, rest.length);
  }
  // Mixed batch sizes.
  const mixed = draw(new EpochStream(n, 6), [1, 20, 30, 3, 50, 7, 0, 37]);
  for (let e = 0; e < 4; e++) assertPermutation(mixed.slice(e * n, (e + 1) * n), n, `mixed, epoch ${e}`);
});

test('different epochs have different orders; the same seed gives the same sequence', () => {
  const n = 50;
  const seq = draw(new EpochStream(n, 42), new Array(30).fill(10));
  const orders = Array.from({ length: 6 }, (_, e) => seq.slice(e * n, (e + 1) * n).join(','));
  assert.equal(new Set(orders).size, orders.length, 'every epoch has its own order');
  assert.notEqual(orders[0], Array.from({ length: n }, (_, i) => i).join(','), 'epoch 0 is shuffled');
  assert.deepEqual(draw(new EpochStream(n, 42), new Array(30).fill(10)), seq);
  assert.deepEqual(draw(new EpochStream(n, 42), [7, 93, 100, 100]), seq, 'batch sizes do not change the sequence');
  assert.notDeepEqual(draw(new EpochStream(n, 43), new Array(30).fill(10)), seq, 'another seed, another sequence');
});

test('position() and restore() continue the same sequence, also at an epoch boundary', () => {
  const n = 23;
  const full = draw(new EpochStream(n, 9), new Array(20).fill(7));
  for (const consumed of [0, 5, 22, 23, 24, 46, 69, 70]) {
    const a = new EpochStream(n, 9);
    draw(a, [consumed]);
    const pos = a.position();
    assert.equal(pos.epoch * n + pos.offset, consumed, `position after ${consumed} examples: ${JSON.stringify(pos)}`);
    // position() is a snapshot, not a live view.
    const copy = { ...pos };
    a.next(3);
    assert.deepEqual(pos, copy);
    const b = new EpochStream(n, 9);
    b.next(11); // somewhere else entirely before restoring
    b.restore(pos);
    assert.deepEqual(b.position(), pos);
    assert.deepEqual(draw(b, [9, 30]), full.slice(consumed, consumed + 39), `continuation after ${consumed}`);
  }
});

test('a stream needs at least one example; size 1 yields zeros', () => {
  assert.throws(() => new EpochStream(0, 1), RangeError);
  assert.deepEqual(Array.from(new EpochStream(1, 1).next(4)), [0, 0, 0, 0]);
});

test('restore refuses an offset outside the epoch with a RangeError', () => {
  const s = new EpochStream(10, 1);
  assert.throws(() => s.restore({ epoch: 0, offset: -1 }), RangeError);
  assert.throws(() => s.restore({ epoch: 0, offset: 11 }), RangeError);
  s.restore({ epoch: 0, offset: 10 });
  s.restore({ epoch: 3, offset: 0 });
});

test('restore refuses a malformed cursor (NaN or fractional offset, negative or fractional epoch) with a RangeError', () => {
  const bad = [
    { epoch: 0, offset: Number.NaN },
    { epoch: 0, offset: 2.5 },
    { epoch: -1, offset: 0 },
    { epoch: 1.5, offset: 0 },
    { epoch: Number.NaN, offset: 0 },
  ];
  const problems: string[] = [];
  for (const c of bad) {
    const s = new EpochStream(10, 1);
    try {
      s.restore(c);
      problems.push(`${JSON.stringify({ epoch: String(c.epoch), offset: String(c.offset) })} accepted, then next(3) = [${Array.from(s.next(3))}]`);
    } catch (e) {
      if (!(e instanceof RangeError)) problems.push(`${JSON.stringify(c)} threw ${String(e)}, not a RangeError`);
    }
  }
  assert.deepEqual(problems, [], `epoch-stream.ts restore() only checks 0 <= offset <= size:\n  ${problems.join('\n  ')}`);
});
