import {
  Binary,
  Bool,
  type DataType,
  Field,
  Float64,
  Int32,
  Int64,
  List,
  Schema,
  Struct,
  TimestampMillisecond,
  Type,
  Utf8,
} from 'apache-arrow';
import { SluiceError } from '../errors.js';

/** The scalar type names users write in schemas (Spark's SQL names, lower case). */
export type ScalarTypeName = 'string' | 'double' | 'long' | 'int' | 'boolean' | 'timestamp' | 'binary';

/**
 * A schema as users write it: `{ sessionId: 'string', amount: 'double', pages: ['string'], device: { type: 'string' } }`.
 * An array of one type is a list, a nested object is a struct. A DDL string (`"sessionId STRING, amount DOUBLE"`)
 * is accepted too.
 */
export type TypeSpec = ScalarTypeName | [TypeSpec] | { [field: string]: TypeSpec };
export type SchemaSpec = { [field: string]: TypeSpec } | string;

const SCALARS: Record<string, () => DataType> = {
  string: () => new Utf8(),
  double: () => new Float64(),
  long: () => new Int64(),
  int: () => new Int32(),
  boolean: () => new Bool(),
  timestamp: () => new TimestampMillisecond('UTC'),
  binary: () => new Binary(),
};

const DDL_ALIASES: Record<string, ScalarTypeName> = {
  STRING: 'string',
  VARCHAR: 'string',
  TEXT: 'string',
  DOUBLE: 'double',
  FLOAT: 'double',
  BIGINT: 'long',
  LONG: 'long',
  INT: 'int',
  INTEGER: 'int',
  BOOLEAN: 'boolean',
  BOOL: 'boolean',
  TIMESTAMP: 'timestamp',
  BINARY: 'binary',
};

/** Arrow type for one spec entry. */
export function arrowType(spec: TypeSpec, where = 'schema'): DataType {
  if (typeof spec === 'string') {
    const make = SCALARS[spec];
    if (!make) {
      throw new SluiceError(
        'BAD_SCHEMA',
        `unknown type '${spec}' in ${where}`,
        `use one of ${Object.keys(SCALARS).join(', ')}, [type] for a list or { field: type } for a struct`,
      );
    }
    return make();
  }
  if (Array.isArray(spec)) {
    if (spec.length !== 1)
      throw new SluiceError(
        'BAD_SCHEMA',
        `a list type in ${where} must name exactly one element type`,
        "write ['string']",
      );
    return new List(new Field('item', arrowType(spec[0], where), true));
  }
  return new Struct(Object.entries(spec).map(([k, t]) => new Field(k, arrowType(t, `${where}.${k}`), true)));
}

/** Arrow schema from a user spec (object or DDL string). All fields are nullable. */
export function schemaFromSpec(spec: SchemaSpec | Schema): Schema {
  if (spec instanceof Schema) return spec;
  const obj = typeof spec === 'string' ? parseDdl(spec) : spec;
  return new Schema(Object.entries(obj).map(([k, t]) => new Field(k, arrowType(t, `field '${k}'`), true)));
}

function parseDdl(ddl: string): Record<string, ScalarTypeName> {
  const out: Record<string, ScalarTypeName> = {};
  for (const part of ddl
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^`?([A-Za-z_][\w.]*)`?\s+(\w+)$/.exec(part);
    const t = m && DDL_ALIASES[m[2].toUpperCase()];
    if (!m || !t) {
      throw new SluiceError(
        'BAD_SCHEMA',
        `cannot read schema entry '${part}'`,
        `write 'name TYPE' with TYPE one of ${Object.keys(DDL_ALIASES).join(', ')}`,
      );
    }
    out[m[1]] = t;
  }
  return out;
}

/** The spec name of an Arrow type, the inverse of arrowType (for messages and checkpointed schemas). */
export function typeSpecOf(type: DataType): TypeSpec {
  switch (type.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8:
      return 'string';
    case Type.Float:
      return 'double';
    case Type.Int:
      return (type as Int64).bitWidth === 64 ? 'long' : 'int';
    case Type.Bool:
      return 'boolean';
    case Type.Timestamp:
    case Type.Date:
      return 'timestamp';
    case Type.Binary:
    case Type.LargeBinary:
      return 'binary';
    case Type.List:
      return [typeSpecOf((type as List).children[0].type)];
    case Type.Struct:
      return Object.fromEntries((type as Struct).children.map((f) => [f.name, typeSpecOf(f.type)]));
    case Type.Dictionary:
      return typeSpecOf((type as unknown as { dictionary: DataType }).dictionary);
    default:
      return 'string';
  }
}

/** JSON-serialisable form of a schema, for checkpoints and worker messages. */
export function schemaToSpec(schema: Schema): Record<string, TypeSpec> {
  return Object.fromEntries(schema.fields.map((f) => [f.name, typeSpecOf(f.type)]));
}

/**
 * Infers a type from sample JS values: the first non-null value decides; integers stay 'double' because
 * JSON does not distinguish them and a later 1.5 must not fail.
 */
export function inferTypeSpec(values: Iterable<unknown>): TypeSpec {
  for (const v of values) {
    if (v === null || v === undefined) continue;
    switch (typeof v) {
      case 'string':
        return 'string';
      case 'number':
        return 'double';
      case 'bigint':
        return 'long';
      case 'boolean':
        return 'boolean';
      case 'object':
        if (v instanceof Date) return 'timestamp';
        if (v instanceof Uint8Array) return 'binary';
        if (Array.isArray(v)) return [inferTypeSpec(iterateNested(values, (x) => (Array.isArray(x) ? x : [])))];
        return inferStruct(iterateNested(values, (x) => (x && typeof x === 'object' ? [x] : [])));
      default:
        break;
    }
  }
  return 'string';
}

function* iterateNested(values: Iterable<unknown>, pick: (v: unknown) => unknown[]): Iterable<unknown> {
  for (const v of values) yield* pick(v);
}

function inferStruct(objects: Iterable<unknown>): { [f: string]: TypeSpec } {
  const fields = new Map<string, unknown[]>();
  for (const o of objects) {
    for (const [k, v] of Object.entries(o as object)) {
      let arr = fields.get(k);
      if (!arr) {
        arr = [];
        fields.set(k, arr);
      }
      if (v !== null && v !== undefined && arr.length < 64) arr.push(v);
    }
  }
  return Object.fromEntries([...fields].map(([k, vs]) => [k, inferTypeSpec(vs)]));
}

/** Schema inferred from sample rows: union of their fields in first-seen order. */
export function inferSchema(rows: Iterable<unknown>): Schema {
  return schemaFromSpec(inferStruct(rows));
}
