/** Element types of the values in Infobound's graphs. */
export type ElemType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool';

/** A tensor in a graph under construction: its unique name, static shape and element type. */
export interface Value {
  readonly name: string;
  readonly shape: readonly number[];
  readonly type: ElemType;
}

/** A node attribute, typed as ONNX types it (an int and a float differ on the wire). */
export type Attribute = { kind: 'int'; value: number } | { kind: 'float'; value: number } | { kind: 'ints'; value: readonly number[] };

/** One recorded operator application. */
export interface GraphNode {
  readonly op: string;
  readonly inputs: readonly Value[];
  readonly output: Value;
  readonly attributes: Readonly<Record<string, Attribute>>;
}

/** A constant of the graph (an ONNX initializer). */
export interface Initializer {
  readonly value: Value;
  readonly data: Float32Array | Float64Array | BigInt64Array;
}

/**
 * Records an ONNX graph as it is built: inputs, constants and operator nodes with static shapes, in
 * the order they were added (which is a topological order, since a node can only take values that
 * exist). The ops in ops/ add nodes; autodiff.ts adds a graph's gradient to the same builder.
 */
export class GraphBuilder {
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly nodes: GraphNode[] = [];
  readonly initializers: Initializer[] = [];
  private readonly names = new Set<string>();
  /** Values gradients do not flow through (ops/stop-gradient.ts). */
  private readonly stopped = new Set<string>();
  /** Names of the symbolic dimensions; dimension −(i + 1) is symbols[i]. */
  private readonly symbols: string[] = [];
  private counter = 0;

  /**
   * @param name the graph's name, for error messages and the model file
   * @param floatType the element type of float values the ops create (float64 for gradient checks) @default 'float32'
   */
  constructor(
    readonly name: string,
    readonly floatType: 'float32' | 'float64' = 'float32',
  ) {}

  /**
   * A dimension whose size is known only at run time (an inference graph's batch), written into the
   * model file as `name`: a negative number in shapes, the same number wherever the size is the same.
   */
  symbol(name: string): number {
    this.symbols.push(name);
    return -this.symbols.length;
  }

  /** The name of a dimension made by {@link symbol}. */
  symbolName(dim: number): string {
    const name = this.symbols[-dim - 1];
    if (name === undefined) throw new Error(`graph ${this.name}: ${dim} is no symbolic dimension`);
    return name;
  }

  /** A graph input fed at run time. */
  input(name: string, shape: readonly number[], type: ElemType = this.floatType): Value {
    const value = this.newValue(name, shape, type);
    this.inputs.push(value);
    return value;
  }

  /** A float constant of `shape` (row-major values). */
  constant(values: ArrayLike<number>, shape: readonly number[]): Value {
    checkCount(values.length, shape, 'constant');
    const value = this.newValue(this.fresh('const'), shape, this.floatType);
    this.initializers.push({ value, data: this.floatType === 'float32' ? Float32Array.from(values) : Float64Array.from(values) });
    return value;
  }

  /** A float scalar constant. */
  scalar(x: number): Value {
    return this.constant([x], []);
  }

  /** A 1-D int64 constant (axes, shapes, indices). */
  int64s(values: readonly number[]): Value {
    const value = this.newValue(this.fresh('ints'), [values.length], 'int64');
    this.initializers.push({ value, data: BigInt64Array.from(values, (v) => BigInt(v)) });
    return value;
  }

  /** The values of an int64 constant made by {@link int64s} (an operator's axes or shape). */
  int64Constant(value: Value): number[] {
    const init = this.initializers.find((i) => i.value === value);
    if (init === undefined || !(init.data instanceof BigInt64Array)) throw new Error(`graph ${this.name}: ${value.name} is not an int64 constant`);
    return Array.from(init.data, Number);
  }

  /** Adds a node of `op` and returns its output, of the shape the op computed. */
  node(op: string, inputs: readonly Value[], shape: readonly number[], attributes: Record<string, Attribute> = {}, type: ElemType = this.floatType): Value {
    for (const v of inputs) if (!this.names.has(v.name)) throw new Error(`graph ${this.name}: ${op} takes ${v.name}, which is not in this graph`);
    const output = this.newValue(this.fresh(op), shape, type);
    this.nodes.push({ op, inputs, output, attributes });
    return output;
  }

  /** Marks `value` as a constant for differentiation: no gradient flows back through it. */
  stopGradient(value: Value): void {
    this.stopped.add(value.name);
  }

  /** Whether {@link stopGradient} marked `value`. */
  isStopped(value: Value): boolean {
    return this.stopped.has(value.name);
  }

  /** Declares `value` a graph output. */
  output(value: Value): void {
    if (!this.names.has(value.name)) throw new Error(`graph ${this.name}: output ${value.name} is not in this graph`);
    this.outputs.push(value);
  }

  /** Declares an output named `name`, the Identity of `value`: what a caller reads by a fixed name. */
  namedOutput(name: string, value: Value): Value {
    if (!this.names.has(value.name)) throw new Error(`graph ${this.name}: output ${value.name} is not in this graph`);
    const output = this.newValue(name, value.shape, value.type);
    this.nodes.push({ op: 'Identity', inputs: [value], output, attributes: {} });
    this.outputs.push(output);
    return output;
  }

  private newValue(name: string, shape: readonly number[], type: ElemType): Value {
    if (this.names.has(name)) throw new Error(`graph ${this.name}: the name ${name} is taken`);
    if (!shape.every((d) => Number.isSafeInteger(d) && (d >= 0 || this.symbols[-d - 1] !== undefined)))
      throw new Error(`graph ${this.name}: ${name} has the shape [${shape.join(', ')}]`);
    this.names.add(name);
    return { name, shape: [...shape], type };
  }

  private fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.counter++}`;
    while (this.names.has(name));
    return name;
  }
}

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

function checkCount(count: number, shape: readonly number[], what: string): void {
  if (count !== sizeOf(shape)) throw new Error(`${what}: ${count} values for the shape [${shape.join(', ')}]`);
}
