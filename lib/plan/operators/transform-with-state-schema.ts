/**
 * The declared types of transformWithState's state variables, and the rule for changing them between runs.
 *
 * Each state partition keeps what every variable was declared as (kind, type, TTL) in one internal state
 * row. On each batch the operator compares the processor's declarations with it:
 * - a variable of a new name, one without a declared type, and one declared as before are fine;
 * - a struct may gain fields whose names end in `?` (optional): values stored before read without them;
 *   a required field may become optional;
 * - anything else cannot read what is stored and is refused, naming the variable and the field: a changed
 *   kind (value, list, map), a changed type, a removed field, a new required field, an optional field
 *   made required.
 */
import { SluiceError } from '../../errors.js';

/** A scalar type of state, with the names schemas use elsewhere. */
export type StateScalarType = 'string' | 'double' | 'long' | 'int' | 'boolean' | 'timestamp' | 'binary';

/**
 * The type of what a state variable stores: a scalar, a list (`['string']`), or a struct whose fields are
 * required unless their names end in `?` (`{ balance: 'double', 'note?': 'string' }`).
 */
export type StateTypeSpec = StateScalarType | [StateTypeSpec] | { [field: string]: StateTypeSpec };

/** The three kinds of state variable. */
export type StateVariableKind = 'value' | 'list' | 'map';

/** What a state partition remembers of one variable's declaration. */
export interface StateVariableRecord {
  kind: StateVariableKind;
  schema?: StateTypeSpec;
  /** The TTL in ms when it had one: its rows carry an expiry to honour even if the TTL is dropped. */
  ttlMs?: number;
}

/** Declarations by variable name, as stored in the internal row. */
export type StateVariableRecords = Record<string, StateVariableRecord>;

const SCALARS: readonly string[] = ['string', 'double', 'long', 'int', 'boolean', 'timestamp', 'binary'];

const KIND_NAMES: Record<StateVariableKind, string> = { value: 'ValueState', list: 'ListState', map: 'MapState' };

/** The API name of a variable kind, e.g. `ValueState`. */
export function kindName(kind: StateVariableKind): string {
  return KIND_NAMES[kind];
}

/** Thrown when a declared state type cannot read stored state; the task runner adds the operator's name. */
export class StateSchemaError extends SluiceError {
  constructor(message: string, hint: string) {
    super('STATE_SCHEMA_INCOMPATIBLE', message, hint);
  }
}

function fieldName(name: string): { name: string; optional: boolean } {
  return name.endsWith('?') ? { name: name.slice(0, -1), optional: true } : { name, optional: false };
}

function describeSpec(spec: StateTypeSpec): string {
  if (typeof spec === 'string') return spec;
  return JSON.stringify(spec);
}

/** Checks a declared type is well formed; throws SluiceError BAD_OPTION naming the variable. */
export function checkTypeSpec(spec: unknown, where: string): StateTypeSpec {
  const bad = (why: string): never => {
    throw new SluiceError(
      'BAD_OPTION',
      `${where}: ${why}`,
      `a state type is one of ${SCALARS.join(', ')}, a list like ['string'] or a struct like { balance: 'double', 'note?': 'string' }`,
    );
  };
  if (typeof spec === 'string') {
    if (!SCALARS.includes(spec)) bad(`unknown type '${spec}'`);
  } else if (Array.isArray(spec)) {
    if (spec.length !== 1) bad('a list type has exactly one element type');
    checkTypeSpec(spec[0], where);
  } else if (spec !== null && typeof spec === 'object') {
    for (const [k, v] of Object.entries(spec)) checkTypeSpec(v, `${where}, field '${fieldName(k).name}'`);
  } else {
    bad(`a type cannot be ${spec === null ? 'null' : typeof spec}`);
  }
  return spec as StateTypeSpec;
}

/** Why `value` does not fit `spec` (naming the field by its path), or null when it does. */
export function misfit(value: unknown, spec: StateTypeSpec, path = ''): string | null {
  const at = path === '' ? '' : ` at '${path}'`;
  if (typeof spec === 'string') {
    const ok =
      spec === 'string'
        ? typeof value === 'string'
        : spec === 'double'
          ? typeof value === 'number'
          : spec === 'long'
            ? (typeof value === 'number' && Number.isInteger(value)) || typeof value === 'bigint'
            : spec === 'int'
              ? typeof value === 'number' && Number.isInteger(value) && Math.abs(value) <= 2 ** 31
              : spec === 'boolean'
                ? typeof value === 'boolean'
                : spec === 'timestamp'
                  ? value instanceof Date
                  : value instanceof Uint8Array;
    return ok ? null : `${describeValue(value)}${at} is not a ${spec}`;
  }
  if (Array.isArray(spec)) {
    if (!Array.isArray(value)) return `${describeValue(value)}${at} is not a list`;
    for (let i = 0; i < value.length; i++) {
      const m = misfit(value[i], spec[0], `${path}[${i}]`);
      if (m !== null) return m;
    }
    return null;
  }
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype)
    return `${describeValue(value)}${at} is not a struct (a plain object)`;
  const declared = new Set<string>();
  for (const [k, fieldSpec] of Object.entries(spec)) {
    const f = fieldName(k);
    declared.add(f.name);
    const v = (value as Record<string, unknown>)[f.name];
    const sub = path === '' ? f.name : `${path}.${f.name}`;
    if (v === undefined || v === null) {
      if (!f.optional) return `required field '${sub}' is missing`;
      continue;
    }
    const m = misfit(v, fieldSpec, sub);
    if (m !== null) return m;
  }
  for (const k of Object.keys(value)) {
    if (!declared.has(k)) return `field '${path === '' ? k : `${path}.${k}`}' is not in the declared type`;
  }
  return null;
}

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}...` : v)}`;
  if (typeof v === 'object') return Array.isArray(v) ? 'a list' : v instanceof Date ? 'a Date' : 'an object';
  return `the ${typeof v} ${String(v)}`;
}

/**
 * Why a variable stored as `stored` cannot be read as `declared` (naming the field), or null when it can.
 * Follows the rule in this module's comment.
 */
export function incompatibility(stored: StateTypeSpec, declared: StateTypeSpec, path = ''): string | null {
  const what = path === '' ? 'its type' : `field '${path}'`;
  if (typeof stored === 'string' || typeof declared === 'string') {
    return stored === declared
      ? null
      : `${what} was stored as ${describeSpec(stored)} and is now declared ${describeSpec(declared)}`;
  }
  if (Array.isArray(stored) || Array.isArray(declared)) {
    if (!(Array.isArray(stored) && Array.isArray(declared)))
      return `${what} was stored as ${describeSpec(stored)} and is now declared ${describeSpec(declared)}`;
    return incompatibility(stored[0], declared[0], `${path}[]`);
  }
  const now = new Map(Object.entries(declared).map(([k, v]) => [fieldName(k).name, { ...fieldName(k), spec: v }]));
  const before = new Set<string>();
  for (const [k, spec] of Object.entries(stored)) {
    const f = fieldName(k);
    before.add(f.name);
    const sub = path === '' ? f.name : `${path}.${f.name}`;
    const d = now.get(f.name);
    if (d === undefined) return `field '${sub}' was removed, but the stored values have it`;
    if (f.optional && !d.optional) return `field '${sub}' was optional and is now required`;
    const m = incompatibility(spec, d.spec, sub);
    if (m !== null) return m;
  }
  for (const d of now.values()) {
    if (!before.has(d.name) && !d.optional) {
      const sub = path === '' ? d.name : `${path}.${d.name}`;
      return `field '${sub}' is new and required, but the stored values do not have it`;
    }
  }
  return null;
}

/**
 * The records to store after this run's declarations, or throws StateSchemaError when a declaration cannot
 * read what `stored` describes. Variables only `stored` knows are kept (their rows are still there).
 */
export function mergeDeclarations(
  stored: StateVariableRecords | undefined,
  declared: ReadonlyMap<string, StateVariableRecord>,
): StateVariableRecords {
  const out: StateVariableRecords = { ...stored };
  for (const [name, d] of declared) {
    const s = stored?.[name];
    if (s !== undefined && s.kind !== d.kind) {
      throw new StateSchemaError(
        `state variable '${name}' was a ${kindName(s.kind)} and is now declared as a ${kindName(d.kind)}`,
        `declare it as a ${kindName(s.kind)} again, or give the new variable another name (deleteIfExists('${name}') drops the old one)`,
      );
    }
    if (s?.schema !== undefined && d.schema !== undefined) {
      const why = incompatibility(s.schema, d.schema);
      if (why !== null) {
        throw new StateSchemaError(
          `state variable '${name}' (${kindName(d.kind)}): ${why}`,
          "only optional fields (names ending in '?') may be added to a stored type; restore the declared type, use a new variable name, or start from a new checkpoint",
        );
      }
    }
    const record: StateVariableRecord = { kind: d.kind };
    const schema = d.schema ?? s?.schema;
    if (schema !== undefined) record.schema = schema;
    const ttlMs = d.ttlMs ?? s?.ttlMs;
    if (ttlMs !== undefined) record.ttlMs = ttlMs;
    out[name] = record;
  }
  return out;
}
