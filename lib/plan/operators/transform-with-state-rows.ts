/**
 * How transformWithState keeps its state: one state row per grouping key, holding all of the key's
 * variables and timers, so that a call reads and writes one row however many variables and timers it uses
 * (Spark keeps a RocksDB column family per variable; a hash lookup per variable and call costs more here
 * than the few bytes a key's variables take).
 *
 * - groupingKey -> {@link KeyRow}: a field per variable the key has a value for (the ValueState's value, the
 *   ListState's array, the MapState's Map), in {@link EXPIRIES_FIELD} the TTL expiry of each variable that
 *   has one, and the key's timers ascending in {@link TIMERS_FIELD} (a lone timer without expiries is the
 *   row's timeout alone, see {@link timersOf}). The row's timeout is the earliest of its timers and expiries,
 *   so the store's timeout index finds due timers and expired values alike; with event-time timers and a TTL
 *   the two clocks share it, and each scan skips what the other clock put there.
 * - {@link VARIABLES_KEY} (internal) -> the declarations of every variable ({@link StateVariableRecords}).
 *
 * Earlier versions kept a row per variable and key ((variable, key) and (timers, key) rows, declarations
 * under {@link ROW_PER_VARIABLE_KEY}); {@link migrateRowPerVariable} rewrites such a partition in this
 * layout in its first batch.
 */
import { encodeKeyString } from '../../state/value-codec.js';
import type { KeyedState } from '../stateful-operator.js';
import type { StateVariableRecords } from './transform-with-state-schema.js';

/** The state of one grouping key: its variables by name, plus the reserved timers and expiries fields. */
export type KeyRow = Record<string, unknown>;

/** The field of a key's timer timestamps; variable names cannot hold NUL, so it names no variable. */
export const TIMERS_FIELD = '\u0000timers';
/** The field of a key's TTL expiries by variable name. */
export const EXPIRIES_FIELD = '\u0000expiries';
/** The internal row holding the variables' declarations (internal rows are one-element keys with this prefix). */
export const VARIABLES_KEY: readonly [string] = ['\u0000sluice:variables'];
/** Whether a state key is {@link VARIABLES_KEY} (keys read from the store are fresh arrays). */
export function isVariablesKey(key: unknown): boolean {
  return Array.isArray(key) && key.length === 1 && key[0] === VARIABLES_KEY[0];
}

/** Where the layout of a row per variable and key kept the declarations. */
export const ROW_PER_VARIABLE_KEY: readonly [string] = ['\u0000sluice:state-variables'];

/**
 * The key's timers, ascending, from its row and the row's timeout: a key's only timer, when none of its
 * variables has a TTL expiry, is not kept in the row but as the row's timeout, which the store keeps anyway
 * (the common case of one timer per key then costs no field to encode and decode).
 */
export function timersOf(row: KeyRow | undefined, timeoutMs: number): number[] {
  const timers = row?.[TIMERS_FIELD] as number[] | undefined;
  if (timers !== undefined) return timers;
  return timeoutMs >= 0 && row?.[EXPIRIES_FIELD] === undefined ? [timeoutMs] : [];
}

/** The TTL expiries of the key's variables, when any has one. */
export function expiriesOf(row: KeyRow): Record<string, number> | undefined {
  return row[EXPIRIES_FIELD] as Record<string, number> | undefined;
}

/** Sets a variable's TTL expiry in a row. */
export function setExpiry(row: KeyRow, name: string, expiryMs: number): void {
  let expiries = expiriesOf(row);
  if (expiries === undefined) {
    expiries = {};
    row[EXPIRIES_FIELD] = expiries;
  }
  expiries[name] = expiryMs;
}

/** Removes a variable's value and expiry from a row. */
export function dropVariable(row: KeyRow, name: string): void {
  delete row[name];
  const expiries = expiriesOf(row);
  if (expiries === undefined || !(name in expiries)) return;
  delete expiries[name];
  for (const _ in expiries) return;
  delete row[EXPIRIES_FIELD];
}

/**
 * Writes a key's row back with its timers (see {@link timersOf}): removed when it holds nothing, else stored
 * with the earliest of its timers and expiries as its timeout.
 */
export function storeRow(state: KeyedState, key: unknown, row: KeyRow, timers: number[]): void {
  const expiries = expiriesOf(row);
  if (timers.length > 1 || (timers.length === 1 && expiries !== undefined)) row[TIMERS_FIELD] = timers;
  else if (row[TIMERS_FIELD] !== undefined) delete row[TIMERS_FIELD];
  let timeout = timers.length > 0 ? timers[0] : Infinity;
  if (expiries !== undefined) for (const name in expiries) if (expiries[name] < timeout) timeout = expiries[name];
  if (timeout !== Infinity) {
    state.put(key, row, timeout);
    return;
  }
  for (const _ in row) {
    state.put(key, row);
    return;
  }
  state.remove(key);
}

/** The variable and grouping key of a row of the layout of a row per variable and key; null for any other row. */
export function parseRowPerVariableKey(row: unknown): { variable: string; key: unknown } | null {
  if (typeof row === 'string') {
    // The timers' variable started with NUL, so the separator is the first NUL after the first character.
    const at = row.indexOf('\u0000', 1);
    return at < 0 ? null : { variable: row.slice(0, at), key: row.slice(at + 1) };
  }
  if (Array.isArray(row) && row.length === 2 && typeof row[0] === 'string') return { variable: row[0], key: row[1] };
  return null;
}

/**
 * Rewrites a partition kept as a row per variable and key into a row per key, timers and TTL expiries
 * included; returns the declarations it held. A no-op returning undefined for a partition in this layout.
 */
export function migrateRowPerVariable(state: KeyedState): StateVariableRecords | undefined {
  const declared = state.get(ROW_PER_VARIABLE_KEY) as StateVariableRecords | undefined;
  if (declared === undefined) return undefined;
  const old: unknown[] = [];
  const rows = new Map<string, { key: unknown; row: KeyRow; timers: number[] }>();
  for (const [stored, value] of state.entries()) {
    const parsed = parseRowPerVariableKey(stored);
    if (parsed === null) continue;
    old.push(stored);
    const s = encodeKeyString(parsed.key);
    let entry = rows.get(s);
    if (entry === undefined) {
      entry = { key: parsed.key, row: {}, timers: [] };
      rows.set(s, entry);
    }
    // Timer rows were named by TIMERS_FIELD as their variable.
    if (parsed.variable === TIMERS_FIELD) {
      entry.timers = value as number[];
      continue;
    }
    entry.row[parsed.variable] = value;
    const expiry = state.getTimeout(stored);
    if (expiry >= 0) setExpiry(entry.row, parsed.variable, expiry);
  }
  for (const stored of old) state.remove(stored);
  state.remove(ROW_PER_VARIABLE_KEY);
  for (const { key, row, timers } of rows.values()) storeRow(state, key, row, timers);
  return declared;
}
