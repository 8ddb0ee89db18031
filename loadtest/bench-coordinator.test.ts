import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = new URL('./bench-coordinator.js', import.meta.url).pathname;

// CI runs the coordinator load test at a small N (issue 5); BENCHMARKS.md has the 16/64/256 figures.
test('the coordinator load test at N = 4 and 8: steps commit, every figure is measured, nothing fails', { timeout: 120_000 }, async () => {
  const { stdout } = await run(process.execPath, [SCRIPT, '--workers', '4,8', '--seconds', '2', '--json'], { timeout: 110_000 });
  const rows = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
  assert.deepEqual(
    rows.map((r) => r.workers),
    [4, 8],
  );
  for (const r of rows) {
    assert.ok(r.committed_steps! > 0 && r.committed_steps_per_s! > 0, `steps committed at N = ${r.workers}`);
    assert.equal(r.errors, 0);
    for (const k of ['report_step_p50_ms', 'report_step_p99_ms', 'health_check_loaded_p99_ms', 'health_check_idle_p50_ms']) {
      assert.ok(Number.isFinite(r[k]) && r[k]! > 0, `${k} at N = ${r.workers}: ${r[k]}`);
    }
    assert.ok(r.report_step_p50_ms! <= r.report_step_p99_ms!);
  }
});
