import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { Attribute, ElemType, GraphBuilder, Value } from './graph-builder.js';

/** The part of the ONNX format Infobound writes (proto/onnx.proto). */
const PROTO_PATH = fileURLToPath(new URL('../../../../proto/onnx.proto', import.meta.url));
const ModelProto = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true }).lookupType('onnx.ModelProto');

/** ONNX IR version 8 and opset 17: what ONNX Runtime 1.30 runs and what python3-onnx 1.12 can check. */
export const IR_VERSION = 8;
export const OPSET = 17;

const DATA_TYPE: Record<ElemType, number> = { float32: 1, int32: 6, int64: 7, bool: 9, float64: 11 };
const ATTRIBUTE_TYPE = { float: 1, int: 2, ints: 7 } as const;

/** The ONNX model file of the graph `g` builds: its bytes, ready for an InferenceSession or a file. */
export function encodeModel(g: GraphBuilder, docString = ''): Uint8Array {
  const valueInfo = (v: Value) => ({
    name: v.name,
    type: { tensor_type: { elem_type: DATA_TYPE[v.type], shape: { dim: v.shape.map((d) => (d < 0 ? { dim_param: g.symbolName(d) } : { dim_value: d })) } } },
  });
  const attribute = (name: string, a: Attribute) =>
    a.kind === 'int'
      ? { name, type: ATTRIBUTE_TYPE.int, i: a.value }
      : a.kind === 'float'
        ? { name, type: ATTRIBUTE_TYPE.float, f: a.value }
        : { name, type: ATTRIBUTE_TYPE.ints, ints: [...a.value] };
  const model = {
    ir_version: IR_VERSION,
    producer_name: 'infobound',
    opset_import: [{ domain: '', version: OPSET }],
    doc_string: docString,
    graph: {
      name: g.name,
      node: g.nodes.map((n) => ({
        op_type: n.op,
        name: n.output.name,
        input: n.inputs.map((v) => v.name),
        output: [n.output.name],
        attribute: Object.entries(n.attributes).map(([name, a]) => attribute(name, a)),
      })),
      initializer: g.initializers.map(({ value, data }) => ({
        name: value.name,
        data_type: DATA_TYPE[value.type],
        dims: [...value.shape],
        raw_data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      })),
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
    },
  };
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}
