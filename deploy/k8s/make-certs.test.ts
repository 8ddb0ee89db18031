import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { parse } from 'yaml';
import { tempDir } from '../../testing/test-helpers.js';

const SCRIPT = new URL('../../../deploy/k8s/make-certs.sh', import.meta.url).pathname;

function run(dir: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('sh', [SCRIPT, ...args], { cwd: dir, env: { ...process.env, OUT: join(dir, 'pki') }, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The Secret the script prints, its files decoded. */
function secretFiles(yaml: string): { namespace: string; files: Record<string, string> } {
  const secret = parse(yaml) as { kind: string; metadata: { name: string; namespace: string }; data: Record<string, string> };
  assert.equal(secret.kind, 'Secret');
  assert.equal(secret.metadata.name, 'infobound-tls');
  return {
    namespace: secret.metadata.namespace,
    files: Object.fromEntries(Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])),
  };
}

test('make-certs.sh: a CA, the coordinator, NATS and one certificate per worker pod naming it, as the Secret the manifests mount', (t) => {
  const dir = tempDir(t);
  const first = run(dir, ['2', 'ml']);
  assert.equal(first.code, 0, first.stderr);
  const { namespace, files } = secretFiles(first.stdout);
  assert.equal(namespace, 'ml');
  assert.deepEqual(Object.keys(files).sort(), [
    'ca.crt',
    'infobound-coordinator.crt',
    'infobound-coordinator.key',
    'infobound-nats.crt',
    'infobound-nats.key',
    'infobound-worker-0.crt',
    'infobound-worker-0.key',
    'infobound-worker-1.crt',
    'infobound-worker-1.key',
  ]);
  const ca = new X509Certificate(files['ca.crt']!);
  for (const name of ['infobound-coordinator', 'infobound-nats', 'infobound-worker-0', 'infobound-worker-1']) {
    const cert = new X509Certificate(files[`${name}.crt`]!);
    assert.ok(cert.verify(ca.publicKey), `${name} is signed by the CA`);
    assert.equal(cert.subject, `CN=${name}`);
    const key = createPrivateKey(files[`${name}.key`]!);
    assert.equal(createPublicKey(key).export({ format: 'pem', type: 'spki' }), cert.publicKey.export({ format: 'pem', type: 'spki' }), `${name}: its key`);
  }
  const worker = new X509Certificate(files['infobound-worker-1.crt']!);
  assert.equal(
    worker.subjectAltName,
    'DNS:infobound-worker-1, DNS:infobound-worker-1.infobound-workers, DNS:infobound-worker-1.infobound-workers.ml.svc, DNS:infobound-worker-1.infobound-workers.ml.svc.cluster.local',
  );
  assert.ok(worker.checkHost('infobound-worker-1.infobound-workers'), 'the name a worker advertises to its peers');
  assert.ok(new X509Certificate(files['infobound-coordinator.crt']!).checkHost('infobound-coordinator'), 'the name workers dial');
  assert.ok(new X509Certificate(files['infobound-nats.crt']!).checkHost('infobound-nats'), 'and the NATS Service');

  // Scaling up: the same CA, so the certificates already in use stay valid.
  const more = run(dir, ['3', 'ml']);
  assert.equal(more.code, 0, more.stderr);
  const again = secretFiles(more.stdout).files;
  assert.equal(again['ca.crt'], files['ca.crt']);
  assert.ok(new X509Certificate(again['infobound-worker-2.crt']!).verify(ca.publicKey));
});

test('make-certs.sh: a wrong worker count is a usage line and exit 2', (t) => {
  const dir = tempDir(t);
  for (const args of [[], ['zero'], ['0'], ['2', 'ns', 'extra']]) {
    const r = run(dir, args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^usage: make-certs\.sh WORKERS \[NAMESPACE\]/);
    assert.equal(r.stdout, '');
  }
});
