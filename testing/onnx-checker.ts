import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const SCRIPT =
  'import sys, onnx\nm = onnx.load(sys.argv[1])\nonnx.checker.check_model(m, full_check=True)\nprint(m.ir_version, m.opset_import[0].version, len(m.graph.node))';

/**
 * Runs the ONNX reference checker (Debian's python3-onnx, with shape inference) on a model file and
 * fails the test unless it accepts it; returns the model's IR version, opset and node count.
 */
export function checkOnnxModel(path: string): { ir: number; opset: number; nodes: number } {
  // Debian's interpreter, where python3-onnx installs the module.
  const r = spawnSync('/usr/bin/python3', ['-c', SCRIPT, path], { encoding: 'utf8' });
  assert.equal(r.error, undefined, 'no /usr/bin/python3: apt-get install python3-onnx');
  assert.doesNotMatch(r.stderr, /No module named 'onnx'/, 'python3-onnx is missing: apt-get install python3-onnx');
  assert.equal(r.status, 0, `${path}: ${r.stderr}`);
  const [ir, opset, nodes] = r.stdout.trim().split(' ').map(Number) as [number, number, number];
  return { ir, opset, nodes };
}
