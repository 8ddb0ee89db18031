// runCoordinator's start-up: what it tells the operator.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import { smallJob } from '../testing/cluster-test-helpers.js';
import { tempDir } from '../testing/test-helpers.js';
import { runCoordinator } from './coordinator-job.js';

test('a coordinator without a join token warns once at start-up, naming the plaintext channels', async (t) => {
  const dir = tempDir(t);
  const said: string[] = [];
  const run = await runCoordinator(smallJob(join(dir, 'unused.tsv'), join(dir, 'run'), { steps: 1 }), {
    workers: 1,
    epoch: async () => ({ size: 10 }),
    token: null,
    info: (m) => said.push(m),
  });
  await run.close();
  const warnings = said.filter((m) => m.startsWith('warning:'));
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0]!,
    /^warning: no join token and the channels are plaintext \(no tls section\): anyone who can reach 127\.0\.0\.1:\d+ can join this job and read its config; set --token or INFOBOUND_TOKEN$/,
  );
  const quiet: string[] = [];
  const withToken = await runCoordinator(smallJob(join(dir, 'unused.tsv'), join(dir, 'run2'), { steps: 1 }), {
    workers: 1,
    epoch: async () => ({ size: 10 }),
    token: 'tok',
    info: (m) => quiet.push(m),
  });
  await withToken.close();
  assert.deepEqual(
    quiet.filter((m) => m.startsWith('warning:')),
    [],
  );
});
