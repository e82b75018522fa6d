/**
 * The StatefulProcessorHandle of transformWithState and its state variables, over the operator's state
 * store (any provider: everything goes through {@link KeyedState}).
 *
 * State rows, per state partition (composite keys of variable and grouping key, see {@link rowKey}; a
 * variable's rows play the part of a column family in Spark's RocksDB layout):
 * - (variable, groupingKey) -> the ValueState's value, the ListState's array, or the MapState's Map;
 *   with a TTL, the row's timeout is its expiry (processing time);
 * - (TIMERS, groupingKey) -> the key's timer timestamps, ascending; the row's timeout is the earliest;
 * - `VARIABLES_KEY` (internal) -> the declarations of every variable ({@link StateVariableRecords}).
 */
import { SluiceError } from '../../errors.js';
import { parseDuration } from '../../util/duration.js';
import type { KeyedState } from '../stateful-operator.js';
import type {
  ListState,
  MapState,
  StatefulProcessorHandle,
  StateVariableOptions,
  TimeMode,
  ValueState,
} from './transform-with-state-processor.js';
import {
  checkTypeSpec,
  kindName,
  misfit,
  type StateVariableKind,
  type StateVariableRecord,
} from './transform-with-state-schema.js';

/** The first key element of timer rows; variable names cannot start with NUL, so it names no variable. */
export const TIMERS = '\u0000timers';
/** The internal row holding the variables' declarations (internal rows are one-element keys with this prefix). */
export const VARIABLES_KEY: readonly [string] = ['\u0000sluice:state-variables'];

/**
 * The state store key of a variable's row for a grouping key. A string grouping key gives the string
 * `variable NUL key`, which the store handles as a primitive key (no array to encode per access: half the
 * cost of a lookup); any other grouping key gives the pair `[variable, key]`. Variable names hold no NUL.
 */
export function rowKey(variable: string, key: unknown): unknown {
  return typeof key === 'string' ? `${variable}\u0000${key}` : [variable, key];
}

/** The variable and grouping key of a row key made by {@link rowKey}, or null for any other key. */
export function parseRowKey(row: unknown): { variable: string; key: unknown } | null {
  if (typeof row === 'string') {
    // TIMERS starts with NUL, so the separator is the first NUL after the first character.
    const at = row.indexOf('\u0000', 1);
    return at < 0 ? null : { variable: row.slice(0, at), key: row.slice(at + 1) };
  }
  if (Array.isArray(row) && row.length === 2 && typeof row[0] === 'string') return { variable: row[0], key: row[1] };
  return null;
}

/** Whether a row key made by {@link rowKey} holds timers. */
export function isTimerRow(row: unknown): boolean {
  return typeof row === 'string' ? row.startsWith(TIMERS) : Array.isArray(row) && row[0] === TIMERS;
}

function handleError(message: string, hint: string): SluiceError {
  return new SluiceError('STATEFUL_PROCESSOR', message, hint);
}

/** Where the handle is in a partition's batch: declaring variables, or calling the processor for a key. */
type Phase = 'idle' | 'init' | 'key';

/**
 * The handle the operator gives its processor. The operator binds it to a partition's state store and
 * clocks ({@link bind}), sets the key of each call ({@link setKey}); state variables read and write the
 * rows of the current key.
 */
export class StatefulProcessorHandleImpl implements StatefulProcessorHandle {
  /** The variables the processor declared in the latest init. */
  readonly declared = new Map<string, StateVariableRecord>();
  /** Variables deleteIfExists asked to drop in the latest init. */
  readonly deleted = new Set<string>();
  private phase: Phase = 'idle';
  private store: KeyedState | null = null;
  private processingTimeMs = 0;
  private key: unknown = undefined;
  /** The current key's timers while a call uses them, and whether it changed them. */
  private timers: number[] | null = null;
  private timersDirty = false;
  private timersRow: unknown = null;

  constructor(
    private readonly timeMode: TimeMode,
    private readonly operator: string,
  ) {}

  /** Starts a partition's batch: state store and processing time, then init may declare variables. */
  bind(store: KeyedState, processingTimeMs: number): void {
    this.store = store;
    this.processingTimeMs = processingTimeMs;
    this.declared.clear();
    this.deleted.clear();
    this.phase = 'init';
  }

  /** The processor is about to be called for `key`. */
  setKey(key: unknown): void {
    this.key = key;
    this.call++;
    this.phase = 'key';
  }

  /**
   * Counts the processor's calls, so that a variable builds its row key once per call: a call's reads and
   * writes then share one string, whose hash the state store's lookups compute once.
   */
  call = 0;

  /**
   * The processor's call for the current key is done: writes the key's timers back if the call changed them
   * (timer calls work on a copy loaded once per call, so re-arming a timer costs one read and one write).
   */
  endKey(): void {
    if (this.timersDirty) {
      const timers = this.timers!;
      const row = this.timersRow;
      if (timers.length === 0) this.store!.remove(row);
      else this.store!.put(row, timers, timers[0]);
    }
    this.timers = null;
    this.timersDirty = false;
  }

  /** The partition's batch is done. */
  unbind(): void {
    this.store = null;
    this.key = undefined;
    this.timers = null;
    this.timersDirty = false;
    this.phase = 'idle';
  }

  /** The state store, for the current key's calls; `what` names the call in the error outside one. */
  state(variable: StateVariable | null, what: string): KeyedState {
    if (this.phase !== 'key' || this.store === null) {
      throw handleError(
        `${variable === null ? '' : `${variable.where()}.`}${what}: no grouping key is being processed`,
        'use state variables and timers in handleInputRows, handleExpiredTimer or handleInitialState, and declare variables in init',
      );
    }
    return this.store;
  }

  get currentKey(): unknown {
    return this.key;
  }

  /** The expiry of a write made now to a variable with `ttlMs`, or -1 without a TTL. */
  expiryOf(ttlMs: number | undefined): number {
    return ttlMs === undefined ? -1 : this.processingTimeMs + ttlMs;
  }

  getValueState<S>(name: string, options?: StateVariableOptions): ValueState<S> {
    return new ValueStateImpl<S>(this, this.declare(name, 'value', options));
  }

  getListState<S>(name: string, options?: StateVariableOptions): ListState<S> {
    return new ListStateImpl<S>(this, this.declare(name, 'list', options));
  }

  getMapState<K, V>(name: string, options?: StateVariableOptions): MapState<K, V> {
    return new MapStateImpl<K, V>(this, this.declare(name, 'map', options));
  }

  registerTimer(expiryTimestampMs: number): void {
    const ts = this.timerTime(expiryTimestampMs, 'registerTimer');
    const timers = this.keyTimers('registerTimer');
    let i = 0;
    while (i < timers.length && timers[i] < ts) i++;
    if (timers[i] === ts) return;
    timers.splice(i, 0, ts);
    this.timersDirty = true;
  }

  deleteTimer(expiryTimestampMs: number): void {
    const ts = this.timerTime(expiryTimestampMs, 'deleteTimer');
    const timers = this.keyTimers('deleteTimer');
    const i = timers.indexOf(ts);
    if (i < 0) return;
    timers.splice(i, 1);
    this.timersDirty = true;
  }

  listTimers(): number[] {
    this.timerTime(0, 'listTimers');
    return [...this.keyTimers('listTimers')];
  }

  /** The current key's timers, loaded on first use in a call. */
  private keyTimers(what: string): number[] {
    if (this.timers === null) {
      this.timersRow = rowKey(TIMERS, this.key);
      const stored = this.state(null, what).get(this.timersRow) as number[] | undefined;
      this.timers = stored ?? [];
    }
    return this.timers;
  }

  deleteIfExists(name: string): void {
    if (this.phase !== 'init') {
      throw handleError(
        `deleteIfExists('${name}') outside init`,
        'drop a variable of every key in init, before any key is processed',
      );
    }
    this.deleted.add(name);
  }

  private timerTime(ts: number, what: string): number {
    if (this.timeMode === 'None') {
      throw handleError(
        `${what}: the ${this.operator} runs with timeMode 'None', which has no timers`,
        "pass timeMode 'ProcessingTime' or 'EventTime' to transformWithState",
      );
    }
    if (!Number.isSafeInteger(ts) || ts < 0) {
      throw handleError(
        `${what}(${ts}): a timer time is a timestamp in whole ms`,
        'e.g. timerValues.getCurrentProcessingTimeInMs() + 60_000',
      );
    }
    return ts;
  }

  private declare(name: string, kind: StateVariableKind, options: StateVariableOptions | undefined): VariableSpec {
    const where = `get${kindName(kind)}('${name}')`;
    if (this.phase !== 'init') {
      throw handleError(
        `${where} outside init`,
        'declare state variables in the processor’s init method and keep them in fields',
      );
    }
    if (typeof name !== 'string' || name === '' || name.includes('\u0000')) {
      throw handleError(
        `${where}: a state variable needs a non-empty name without NUL`,
        "e.g. getValueState('balance')",
      );
    }
    if (this.declared.has(name)) {
      throw handleError(`${where}: a state variable '${name}' is already declared`, 'give each variable its own name');
    }
    const record: StateVariableRecord = { kind };
    if (options?.schema !== undefined) record.schema = checkTypeSpec(options.schema, where);
    if (options?.ttl !== undefined) {
      const ms = parseDuration(options.ttl.ttlDuration, `${where} TTL`);
      if (!(ms > 0)) throw handleError(`${where}: the TTL must be positive`, "e.g. { ttl: { ttlDuration: '1 hour' } }");
      record.ttlMs = ms;
    }
    this.declared.set(name, record);
    return { name, ...record };
  }
}

interface VariableSpec extends StateVariableRecord {
  name: string;
}

/** What the state variables share: the row of the current key, type checks and TTL on write. */
abstract class StateVariable {
  constructor(
    protected readonly handle: StatefulProcessorHandleImpl,
    protected readonly spec: VariableSpec,
  ) {}

  /** The variable as messages name it, e.g. `ValueState 'balance'`. */
  where(): string {
    return `${kindName(this.spec.kind)} '${this.spec.name}'`;
  }

  private rowCall = -1;
  private row: unknown = null;

  /** The state store and this variable's row key for the current grouping key. */
  private current(what: string): KeyedState {
    const state = this.handle.state(this, what);
    if (this.rowCall !== this.handle.call) {
      this.rowCall = this.handle.call;
      this.row = rowKey(this.spec.name, this.handle.currentKey);
    }
    return state;
  }

  protected read(what: string): unknown {
    return this.current(what).get(this.row);
  }

  protected has(what: string): boolean {
    return this.current(what).has(this.row);
  }

  protected write(what: string, stored: unknown): void {
    this.current(what).put(this.row, stored, this.handle.expiryOf(this.spec.ttlMs));
  }

  protected remove(what: string): void {
    this.current(what).remove(this.row);
  }

  /** Throws when `value` does not fit the declared type; null and undefined are never stored. */
  protected check(value: unknown, what: string): void {
    if (value === null || value === undefined) {
      throw handleError(
        `${this.where()}.${what}: ${value} is not a state value`,
        'clear() removes state; store a value or leave it out',
      );
    }
    if (this.spec.schema === undefined) return;
    const why = misfit(value, this.spec.schema);
    if (why !== null) {
      throw new SluiceError(
        'STATE_VALUE_TYPE',
        `${this.where()}.${what}: ${why}`,
        `the variable is declared ${JSON.stringify(this.spec.schema)}: store a value of that type or change the declaration`,
      );
    }
  }
}

class ValueStateImpl<S> extends StateVariable implements ValueState<S> {
  exists(): boolean {
    return this.has('exists()');
  }

  get(): S | undefined {
    return this.read('get()') as S | undefined;
  }

  update(value: S): void {
    this.check(value, 'update()');
    this.write('update()', value);
  }

  clear(): void {
    this.remove('clear()');
  }
}

class ListStateImpl<S> extends StateVariable implements ListState<S> {
  exists(): boolean {
    return this.has('exists()');
  }

  get(): S[] {
    return (this.read('get()') as S[] | undefined) ?? [];
  }

  put(values: S[]): void {
    if (!Array.isArray(values)) throw handleError('ListState.put(): give an array of values', 'e.g. list.put([a, b])');
    for (const v of values) this.check(v, 'put()');
    if (values.length === 0) this.remove('put()');
    else this.write('put()', [...values]);
  }

  appendValue(value: S): void {
    this.check(value, 'appendValue()');
    const list = this.get();
    list.push(value);
    this.write('appendValue()', list);
  }

  appendList(values: S[]): void {
    if (!Array.isArray(values))
      throw handleError('ListState.appendList(): give an array of values', 'e.g. list.appendList([a, b])');
    for (const v of values) this.check(v, 'appendList()');
    if (values.length === 0) return;
    this.write('appendList()', [...this.get(), ...values]);
  }

  clear(): void {
    this.remove('clear()');
  }
}

class MapStateImpl<K, V> extends StateVariable implements MapState<K, V> {
  exists(): boolean {
    return this.has('exists()');
  }

  private map(what: string): Map<K, V> {
    return (this.read(what) as Map<K, V> | undefined) ?? new Map<K, V>();
  }

  getValue(key: K): V | undefined {
    return this.map('getValue()').get(key);
  }

  containsKey(key: K): boolean {
    return this.map('containsKey()').has(key);
  }

  updateValue(key: K, value: V): void {
    if (key === null || key === undefined)
      throw handleError(`MapState.updateValue(): ${key} is not a map key`, 'use a string, number or array key');
    this.check(value, 'updateValue()');
    const m = this.map('updateValue()');
    m.set(key, value);
    this.write('updateValue()', m);
  }

  iterator(): [K, V][] {
    return [...this.map('iterator()').entries()];
  }

  keys(): K[] {
    return [...this.map('keys()').keys()];
  }

  values(): V[] {
    return [...this.map('values()').values()];
  }

  removeKey(key: K): void {
    const m = this.map('removeKey()');
    if (!m.delete(key)) return;
    if (m.size === 0) this.remove('removeKey()');
    else this.write('removeKey()', m);
  }

  clear(): void {
    this.remove('clear()');
  }
}
