/**
 * The schema builder. A config section is declared once, as fields made by these constructors; its
 * type ({@link ValuesOf}), defaults, validation, `infobound config` text and flags all come from that.
 */

/** A field's value in YAML, JSON and the validated config. */
type Scalar = string | number | boolean | null;

/** Interval bounds of a numeric field; absent ones are unbounded. */
export interface Bounds {
  readonly ge?: number;
  readonly gt?: number;
  readonly le?: number;
  readonly lt?: number;
}

/** How a field's value is checked (besides `null`, which {@link Field.nullable} decides). */
type Rule =
  | ({ readonly type: 'int'; readonly powerOfTwo: boolean } & Bounds)
  | ({ readonly type: 'number' } & Bounds)
  | { readonly type: 'bool' }
  | { readonly type: 'string' }
  | { readonly type: 'enum'; readonly values: readonly string[] };

/** The command-line flag that replaces a field, `--name ARG`. */
export interface Flag<N extends string = string> {
  /** Without the dashes: `bank-size` is `--bank-size`. */
  readonly name: N;
  /** What the usage line puts after the flag: the `K` of `[--bank-size K]`. */
  readonly arg: string;
}

/** One field: its check, default and meaning, and the flag that may set it. `V` is its value's type. */
export interface Field<V extends Scalar = Scalar, N extends string = string> {
  readonly rule: Rule;
  readonly nullable: boolean;
  readonly default: V;
  /** What it is, its unit and why; `infobound config` adds the values it accepts. */
  readonly doc: string;
  readonly flag?: Flag<N>;
}

/** A mapping of fields (`train:`), with the comment `infobound config` puts above it. */
export interface Section<F extends Fields = Fields> {
  readonly doc: string;
  readonly fields: F;
}

/** The entries of a section (or of the whole config) by YAML name, in the order they are documented. */
export interface Fields {
  readonly [name: string]: Field | Section;
}

/** The value type of a mapping of fields: `ValuesOf<typeof CONFIG>` is the config's type. */
export type ValuesOf<F extends Fields> = {
  -readonly [K in keyof F]: F[K] extends Section<infer G> ? ValuesOf<G> : F[K] extends Field<infer V> ? V : never;
};

/** The value type of a section. */
export type SectionValue<S extends Section> = ValuesOf<S['fields']>;

/** The names of the flags that fields under `F` declare. */
export type FlagNamesOf<F extends Fields> = {
  [K in keyof F]: F[K] extends Section<infer G> ? FlagNamesOf<G> : F[K] extends Field<Scalar, infer N> ? N : never;
}[keyof F];

export function isSection(entry: Field | Section): entry is Section {
  return 'fields' in entry;
}

export function section<F extends Fields>(doc: string, fields: F): Section<F> {
  return { doc, fields };
}

/** What every constructor takes: the default, the doc and, optionally, the flag. */
interface Described<V, F> {
  readonly default: V;
  readonly doc: string;
  readonly flag?: F;
}

// The constructors return Field<V, NoInfer<N>> so that a field without a flag keeps N = never: the
// contextual type of a section's entries would otherwise infer N = string, as if every field had a flag.

/** An integer (a safe one), optionally bounded and a power of two. */
export function int<const N extends string = never>(o: Described<number, Flag<N>> & Bounds & { readonly powerOfTwo?: true }): Field<number, NoInfer<N>> {
  const { default: value, doc, flag, powerOfTwo, ...bounds } = o;
  return field({ type: 'int', powerOfTwo: powerOfTwo === true, ...bounds }, false, { default: value, doc, flag });
}

/** A finite number, optionally bounded. */
export function num<const N extends string = never>(o: Described<number, Flag<N>> & Bounds): Field<number, NoInfer<N>> {
  const { default: value, doc, flag, ...bounds } = o;
  return field({ type: 'number', ...bounds }, false, { default: value, doc, flag });
}

/** A finite number, optionally bounded, or null. */
export function numOrNull<const N extends string = never>(o: Described<number | null, Flag<N>> & Bounds): Field<number | null, NoInfer<N>> {
  const { default: value, doc, flag, ...bounds } = o;
  return field({ type: 'number', ...bounds }, true, { default: value, doc, flag });
}

/** true or false. */
export function bool<const N extends string = never>(o: Described<boolean, Flag<N>>): Field<boolean, NoInfer<N>> {
  return field({ type: 'bool' }, false, o);
}

/** A non-empty string (a path, a URL, a secret), or null. */
export function strOrNull<const N extends string = never>(o: Described<string | null, Flag<N>>): Field<string | null, NoInfer<N>> {
  return field({ type: 'string' }, true, o);
}

/** One of `values`; its flag's usage lists them (`[--kind auto|clicklog|images]`). */
export function oneOf<const V extends string, const N extends string = never>(
  values: readonly V[],
  o: Described<NoInfer<V>, { readonly name: N }>,
): Field<V, NoInfer<N>> {
  const { default: value, doc, flag } = o;
  return field({ type: 'enum', values }, false, { default: value, doc, flag: flag && { name: flag.name, arg: values.join('|') } });
}

function field<V extends Scalar, N extends string>(rule: Rule, nullable: boolean, o: Described<V, Flag<N> | undefined>): Field<V, N> {
  return { rule, nullable, default: o.default, doc: o.doc, ...(o.flag !== undefined ? { flag: o.flag } : {}) };
}
