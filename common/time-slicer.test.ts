import assert from 'node:assert/strict';
import test from 'node:test';
import { TimeSlicer } from './time-slicer.js';

/** Busy work for about `ms` milliseconds (the event loop blocked, as a long computation blocks it). */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // blocked on purpose
  }
}

test('a timer due during sliced work runs between slices, not after the whole work', async () => {
  const slicer = new TimeSlicer(5);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  try {
    for (let i = 0; i < 40; i++) {
      spin(2);
      await slicer.maybeYield();
    }
    const during = ticks;
    assert.ok(during >= 5, `the timer ran ${during} times during 80 ms of sliced work`);
  } finally {
    clearInterval(timer);
  }
});

test('within a slice it does not yield', async () => {
  const slicer = new TimeSlicer(10_000);
  let ran = false;
  setImmediate(() => (ran = true));
  await slicer.maybeYield();
  assert.equal(ran, false);
});
