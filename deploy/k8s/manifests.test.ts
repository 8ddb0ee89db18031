import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { COORDINATOR_USAGE } from '../../cli/command-coordinator.js';
import { WORKER_USAGE } from '../../cli/command-worker.js';
import { defaultConfig, loadConfig, type Config } from '../../common/config/mod.js';
import { METRIC_NAMES } from '../../common/metrics.js';
import { makeTestPki, tempDir } from '../../testing/test-helpers.js';
import { NatsTestServer } from '../../testing/nats-test-server.js';
import { UserError } from '../../common/user-error.js';
import { NatsBankStream } from '../../worker/bank/nats-bank-stream.js';
import { openBankTransport } from '../../worker/bank/open-bank-transport.js';
import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';

const ROOT = new URL('../../..', import.meta.url).pathname;
const deployPath = (...parts: string[]) => join(ROOT, 'deploy', ...parts);

/** Validators of every kind the manifests may hold (offline JSON-schema validation). */
const MODELS: Record<string, new (o: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

/** A rendered manifest's fields: arbitrary Kubernetes objects, which the schema check validates. */
// biome-ignore lint/suspicious/noExplicitAny: see above
type Loose = any;

type Obj = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: Loose; data?: Record<string, string> };
type Container = {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { name?: string; containerPort: number }[];
  resources?: Loose;
  readinessProbe?: Loose;
  livenessProbe?: Loose;
  startupProbe?: Loose;
};

function render(dir: string): Obj[] {
  let text: string;
  try {
    text = execFileSync('kubectl', ['kustomize', deployPath('k8s', dir)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`kubectl kustomize deploy/k8s/${dir} failed (kubectl is needed: apt-get install kubernetes-client): ${(err as Error).message}`);
  }
  return parseAllDocuments(text).map((d) => d.toJS() as Obj);
}

/** The pod templates of the workloads, with their workload. */
function podTemplates(objs: Obj[]): { owner: Obj; labels: Record<string, string>; spec: { containers: Container[]; securityContext?: Loose } }[] {
  return objs
    .filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')
    .map((o) => ({ owner: o, labels: o.spec.template.metadata.labels, spec: o.spec.template.spec }));
}

const selects = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Environment variable names our own code reads (process.env.X or env.X in the sources). */
function envNamesReadByCode(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (path.endsWith('.ts') && !path.endsWith('.test.ts'))
        for (const m of readFileSync(path, 'utf8').matchAll(/\benv\.([A-Z][A-Z0-9_]+)/g)) names.add(m[1]!);
    }
  };
  for (const dir of ['cli', 'common', 'worker', 'coordinator']) walk(join(ROOT, dir));
  return names;
}

/** The flags a usage text lists. */
const flagsOf = (usage: string) => new Set(usage.match(/--[a-z][a-z-]*/g));

for (const dir of ['base', 'gpu']) {
  test(`deploy/k8s/${dir}: every rendered manifest validates against the Kubernetes schemas, and names what the code uses`, (t) => {
    const objs = render(dir);
    const kinds = new Set(objs.map((o) => o.kind));
    for (const kind of ['Deployment', 'StatefulSet', 'Service', 'PodDisruptionBudget', 'NetworkPolicy', 'ServiceMonitor', 'ConfigMap'])
      assert.ok(kinds.has(kind), `has a ${kind}`);
    for (const o of objs) {
      const Model = MODELS[`${o.apiVersion}/${o.kind}`];
      assert.ok(Model !== undefined, `no schema for ${o.apiVersion} ${o.kind} ${o.metadata.name}`);
      assert.doesNotThrow(() => new Model(o as never).validate(), `${o.kind} ${o.metadata.name}`);
    }

    const pods = podTemplates(objs);
    const readByCode = envNamesReadByCode();
    const usages: Record<string, Set<string>> = { coordinator: flagsOf(COORDINATOR_USAGE), worker: flagsOf(WORKER_USAGE) };
    for (const pod of pods) {
      assert.equal(pod.spec.securityContext?.runAsNonRoot, true, `${pod.owner.metadata.name} runs as non-root`);
      for (const c of pod.spec.containers) {
        const ports = new Map((c.ports ?? []).map((p) => [p.name, p.containerPort]));
        for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean)) {
          // The coordinator's and the Peer server's gRPC ports both serve grpc.health.v1.
          if (probe.grpc)
            assert.ok([ports.get('grpc'), ports.get('peer')].includes(probe.grpc.port), `${c.name}: the gRPC probe hits a port with the health service`);
          if (probe.httpGet && typeof probe.httpGet.port === 'string') assert.ok(ports.has(probe.httpGet.port), `${c.name}: probe port ${probe.httpGet.port}`);
        }
        if (!c.image.includes('infobound')) continue;
        const [command, ...args] = c.args ?? [];
        assert.ok(usages[command!] !== undefined, `${c.name}: runs "infobound ${command}"`);
        for (const a of args.filter((x) => x.startsWith('--'))) assert.ok(usages[command!]!.has(a), `${c.name}: "${a}" is a flag of infobound ${command}`);
        const flag = (name: string) => {
          const i = args.indexOf(name);
          return i < 0 ? undefined : Number(args[i + 1]);
        };
        assert.equal(flag('--metrics-port'), ports.get('metrics'), `${c.name}: metrics port`);
        if (command === 'coordinator') assert.equal(flag('--port'), ports.get('grpc'), 'coordinator gRPC port');
        if (command === 'worker') {
          assert.equal(flag('--peer-port'), ports.get('peer'), 'worker peer port');
          assert.equal(flag('--data-port'), ports.get('data'), 'worker data-plane port');
          const coordinatorPort = Number(args[args.indexOf('--coordinator') + 1]!.split(':')[1]);
          const coordinatorService = objs.find((o) => o.kind === 'Service' && o.metadata.name === args[args.indexOf('--coordinator') + 1]!.split(':')[0]);
          assert.ok(coordinatorService, 'the worker dials the coordinator Service');
          assert.ok(
            coordinatorService!.spec.ports.some((p: { port: number }) => p.port === coordinatorPort),
            'at its gRPC port',
          );
        }
        const envNames = new Set((c.env ?? []).map((e) => e.name));
        for (const ref of args.join(' ').matchAll(/\$\(([A-Z_]+)\)/g)) assert.ok(envNames.has(ref[1]!), `${c.name}: $(${ref[1]}) is defined`);
        for (const name of envNames) {
          const usedInArgs = args.some((a) => a.includes(`$(${name})`));
          assert.ok(readByCode.has(name) || usedInArgs, `${c.name}: env ${name} is read by the code`);
        }
      }
    }

    // Services, the ServiceMonitor and the network policies name ports the selected pods have.
    const portNamesOf = (selector: Record<string, string>) =>
      new Set(pods.filter((p) => selects(selector, p.labels)).flatMap((p) => p.spec.containers.flatMap((c) => (c.ports ?? []).map((x) => x.name))));
    const services = objs.filter((o) => o.kind === 'Service');
    for (const s of services) {
      const names = portNamesOf(s.spec.selector);
      assert.ok(names.size > 0, `Service ${s.metadata.name} selects pods`);
      for (const p of s.spec.ports) assert.ok(names.has(p.targetPort), `Service ${s.metadata.name}: targetPort ${p.targetPort}`);
    }
    for (const np of objs.filter((o) => o.kind === 'NetworkPolicy')) {
      const names = portNamesOf(np.spec.podSelector.matchLabels);
      for (const rule of np.spec.ingress) for (const p of rule.ports) assert.ok(names.has(p.port), `NetworkPolicy ${np.metadata.name}: port ${p.port}`);
    }
    const monitor = objs.find((o) => o.kind === 'ServiceMonitor')!;
    const monitored = services.filter(
      (s) =>
        selects(monitor.spec.selector.matchLabels, s.metadata.labels ?? {}) &&
        monitor.spec.selector.matchExpressions.every((e: { key: string; values: string[] }) => e.values.includes(s.metadata.labels?.[e.key] ?? '')),
    );
    assert.deepEqual(monitored.map((s) => s.metadata.name).sort(), ['infobound-coordinator', 'infobound-workers']);
    for (const s of monitored)
      for (const e of monitor.spec.endpoints)
        assert.ok(
          s.spec.ports.some((p: { name: string }) => p.name === e.port),
          `${s.metadata.name} has port ${e.port}`,
        );

    // The dashboard ConfigMap is the dashboard file, for Grafana's sidecar.
    const dashboard = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'infobound-dashboard')!;
    assert.equal(dashboard.metadata.labels?.grafana_dashboard, '1');
    assert.equal(dashboard.data!['infobound.json'], readFileSync(deployPath('grafana', 'infobound.json'), 'utf8'));

    // The job config is a valid Infobound config with the NATS service's address.
    const config = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('infobound-config'))!;
    const path = join(tempDir(t), 'job.yaml');
    writeFileSync(path, config.data!['job.yaml']!);
    const job = loadConfig(path);
    const nats = services.find((s) => s.metadata.name === 'infobound-nats')!;
    assert.equal(job.nats.url, `nats://infobound-nats:${nats.spec.ports.find((p: { name: string }) => p.name === 'client').port}`);

    // Safe by default: TLS on every gRPC channel, the token and the NATS password required.
    assert.ok(job.tls.ca !== null && job.tls.cert !== null && job.tls.key !== null && job.tls.mutual, 'mutual TLS on');
    assert.equal(job.tls.worker_identity, 'certificate');
    const coordinatorPod = pods.find((p) => p.owner.metadata.name === 'infobound-coordinator')!;
    assert.ok(coordinatorPod.spec.containers[0]!.args!.includes('--require-token'));
    const secretRefs = pods.flatMap((p) =>
      p.spec.containers.flatMap((c) =>
        (c.env ?? []).flatMap((e) => ((e as Loose).valueFrom?.secretKeyRef ? [[c.name, e.name, (e as Loose).valueFrom.secretKeyRef]] : [])),
      ),
    );
    assert.deepEqual(secretRefs.map(([c, name]) => `${c} ${name}`).sort(), [
      'coordinator INFOBOUND_TOKEN',
      'nats NATS_PASSWORD',
      'worker INFOBOUND_TOKEN',
      'worker NATS_PASSWORD',
    ]);
    for (const [c, name, ref] of secretRefs) assert.notEqual(ref.optional, true, `${c} ${name} is required`);
    const natsConf = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'infobound-nats-config')!.data!['nats.conf']!;
    assert.match(natsConf, /authorization \{/);
    // Each pod's certificate is at the config's paths: the coordinator's from the Secret, a worker's from its init container.
    const tlsMount = (p: { spec: Loose }) => p.spec.containers[0].volumeMounts.find((m: { mountPath: string }) => job.tls.ca!.startsWith(m.mountPath));
    for (const p of pods.filter((x) => ['infobound-coordinator', 'infobound-worker'].includes(x.owner.metadata.name)))
      assert.ok(tlsMount(p), `${p.owner.metadata.name} mounts the TLS files`);
    assert.equal(job.nats.tls_ca, job.tls.ca, 'NATS on TLS too, with the job’s CA');
    const workers = pods.find((p) => p.owner.metadata.name === 'infobound-worker')!;
    const init = (workers.spec as Loose).initContainers[0];
    assert.match(init.command.join(' '), /\/etc\/infobound-tls\/tls\.crt/);
    const worker = workers.spec.containers[0]!;
    assert.equal(worker.args![worker.args!.indexOf('--advertise') + 1], '$(POD_NAME).infobound-workers', 'peers dial the name the certificate carries');
    if (dir === 'gpu') {
      assert.equal(worker.resources.limits['nvidia.com/gpu'], 1);
      assert.match(worker.image, /infobound-gpu:/);
      assert.equal(worker.env!.find((e) => e.name === 'INFOBOUND_DEVICE')?.value, 'cuda');
    } else {
      assert.equal(worker.resources.limits['nvidia.com/gpu'], undefined);
    }
  });
}

test('every metric the dashboard queries is one the code exports', () => {
  const text = readFileSync(deployPath('grafana', 'infobound.json'), 'utf8');
  const exported = new Set(Object.values(METRIC_NAMES) as string[]);
  const used = new Set([...text.matchAll(/\binfobound_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, '')));
  assert.ok(used.size >= 15);
  for (const name of used) assert.ok(exported.has(name), `${name} is in common/metrics.ts`);
});

test('container images: non-root, the documented ports, and the GPU one on CUDA 12 / cuDNN 9 with ONNX Runtime’s CUDA provider installed and the cuda device', () => {
  const cpu = readFileSync(deployPath('docker', 'Dockerfile'), 'utf8');
  const gpu = readFileSync(deployPath('docker', 'Dockerfile.gpu'), 'utf8');
  for (const [name, text] of [
    ['Dockerfile', cpu],
    ['Dockerfile.gpu', gpu],
  ] as const) {
    const users = [...text.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]!);
    assert.ok(users.length > 0 && !/^(root|0)(:|$)/.test(users.at(-1)!), `${name}: the last USER is not root`);
    assert.match(text, /^EXPOSE 7070 7071 7072 9400$/m, `${name}: coordinator, peer, data-plane and metrics ports`);
    assert.match(text, /^ENTRYPOINT \["node", "\/app\/bin\/infobound\.js"\]$/m);
  }
  assert.match(gpu, /^FROM nvidia\/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu22\.04$/m);
  assert.match(gpu, /ONNXRUNTIME_NODE_INSTALL=cuda12 node script\/install\.js/, 'the CUDA provider is installed');
  assert.match(gpu, /libonnxruntime_providers_cuda\.so/, 'and checked to be there');
  assert.match(gpu, /libvulkan1/, 'the Vulkan loader for --device webgpu');
  assert.match(gpu, /^ENV INFOBOUND_DEVICE=cuda$/m);
  for (const text of [cpu, gpu]) assert.match(text, /npm ci --ignore-scripts/, 'no install script runs in npm ci');
  assert.doesNotMatch(cpu, /tfjs-node|ONNXRUNTIME_NODE_INSTALL/, 'the CPU image has the CPU engines of the npm packages only');
});

test("the manifests' NATS: TLS, no connection without the job's user; under its permissions the bank works, and other subjects are refused", async (t) => {
  const objs = render('base');
  const conf = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'infobound-nats-config')!.data!['nats.conf']!;
  // The manifests' own file, with this test's store and certificates and no monitoring port (the address comes from the test).
  const pki = makeTestPki(tempDir(t), 'nats');
  const server = await NatsTestServer.start(t, {
    config: (store) =>
      conf
        .replace('store_dir: /data', `store_dir: ${JSON.stringify(store)}`)
        .replace(/^http_port: .*$/m, '')
        .replace('/etc/nats-tls/tls.crt', pki.cert)
        .replace('/etc/nats-tls/tls.key', pki.key)
        .replace('/etc/nats-tls/ca.crt', pki.ca),
    env: { NATS_PASSWORD: 'the-secret' },
  });
  const base: Config['nats'] = { ...defaultConfig().nats, url: server.url, timeout_ms: 3000, tls_ca: pki.ca };
  const refused = (over: Partial<Config['nats']>, pattern: RegExp) =>
    assert.rejects(
      NatsBankStream.open({ ...base, ...over }, 'infobound', 100, 'intruder'),
      (err: Error) => err instanceof UserError && pattern.test(err.message),
    );
  await refused({}, /Authorization Violation/);
  await refused({ user: 'infobound', password: 'guess' }, /Authorization Violation/);
  await refused({ user: 'infobound', password: 'the-secret', tls_ca: null }, /cannot connect/);
  const config = { ...defaultConfig(), nats: { ...base, user: 'infobound', password: 'the-secret' } };
  const bank = await openBankTransport(config, { dim: 2, itemCount: 10 }, { job: 'infobound', runId: 'run', bankKey: randomBytes(32), clientName: 'worker' });
  t.after(() => bank.close());
  const got = await bank.exchange({ keys: Float32Array.of(0.6, 0.8), ids: Int32Array.of(3), step: 1, producer: 0 }, { generation: 1, world: 1 });
  assert.deepEqual(Array.from(got[0]!.ids), [3]);
  // Another job's subjects are not this user's.
  const nc = await connect({ servers: server.url, user: 'infobound', pass: 'the-secret', tls: { ca: readFileSync(pki.ca, 'utf8') } });
  t.after(() => nc.close());
  await assert.rejects(jetstream(nc).publish('ib.other.bank.0', 'x', { timeout: 2000 }), /Permissions Violation for Publish to "ib\.other\.bank\.0"/);
});
