/**
 * The StatefulProcessorHandle of transformWithState and its state variables, over the operator's state
 * store (any provider: everything goes through {@link KeyedState}). A call reads the key's row (see
 * transform-with-state-rows.ts) once, on its first use of a variable or timer, and writes it back once, at
 * its end, if it changed anything.
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
import { dropVariable, type KeyRow, setExpiry, storeRow, timersOf } from './transform-with-state-rows.js';
import {
  checkTypeSpec,
  kindName,
  misfit,
  type StateVariableKind,
  type StateVariableRecord,
} from './transform-with-state-schema.js';

function handleError(message: string, hint: string): SluiceError {
  return new SluiceError('STATEFUL_PROCESSOR', message, hint);
}

/** Where the handle is in a partition's batch: declaring variables, or calling the processor for a key. */
type Phase = 'idle' | 'init' | 'key';

/**
 * The handle the operator gives its processor. The operator binds it to a partition's state store and
 * clocks ({@link bind}), sets the key of each call ({@link setKey}) and ends it ({@link endKey}); state
 * variables and timers read and write the current key's row.
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
  /** The current key's row once the call has used it (null: the key has none yet), and whether it changed. */
  private row: KeyRow | null = null;
  private loaded = false;
  private dirty = false;
  /** The current key's timers once the call has used them. */
  private timers: number[] | null = null;

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
    this.forgetRow();
    this.phase = 'key';
  }

  /** The processor's call for the current key is done: writes the key's row back if the call changed it. */
  endKey(): void {
    if (this.dirty) storeRow(this.store!, this.key, this.row ?? {}, this.keyTimers(null, 'endKey'));
    this.forgetRow();
  }

  /** The partition's batch is done. */
  unbind(): void {
    this.store = null;
    this.key = undefined;
    this.forgetRow();
    this.phase = 'idle';
  }

  private forgetRow(): void {
    this.row = null;
    this.loaded = false;
    this.dirty = false;
    this.timers = null;
  }

  /** The current key's row as stored (null when it has none); `what` names the call in the error outside one. */
  readRow(variable: StateVariable | null, what: string): KeyRow | null {
    if (this.loaded) return this.row;
    if (this.phase !== 'key' || this.store === null) {
      throw handleError(
        `${variable === null ? '' : `${variable.where()}.`}${what}: no grouping key is being processed`,
        'use state variables and timers in handleInputRows, handleExpiredTimer or handleInitialState, and declare variables in init',
      );
    }
    this.row = (this.store.get(this.key) as KeyRow | undefined) ?? null;
    this.loaded = true;
    return this.row;
  }

  /** The current key's timers, ascending, to be changed in place (then `dirty`) and written back with the row. */
  private keyTimers(variable: StateVariable | null, what: string): number[] {
    if (this.timers === null) {
      const row = this.readRow(variable, what);
      this.timers = timersOf(row ?? undefined, row === null ? -1 : this.store!.getTimeout(this.key));
    }
    return this.timers;
  }

  /** The current key's row, to be changed and written back at the end of the call. */
  changeRow(variable: StateVariable | null, what: string): KeyRow {
    if (this.readRow(variable, what) === null) this.row = {};
    this.dirty = true;
    return this.row!;
  }

  /** Sets a variable's value in the current key's row, with its TTL expiry when it has one. */
  setValue(variable: StateVariable, what: string, name: string, value: unknown, ttlMs: number | undefined): void {
    const row = this.changeRow(variable, what);
    row[name] = value;
    if (ttlMs !== undefined) setExpiry(row, name, this.processingTimeMs + ttlMs);
  }

  /** Removes a variable's value from the current key's row. */
  clearValue(variable: StateVariable, what: string, name: string): void {
    const row = this.readRow(variable, what);
    if (row === null || row[name] === undefined) return;
    dropVariable(row, name);
    this.dirty = true;
  }

  get currentKey(): unknown {
    return this.key;
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
    const timers = this.keyTimers(null, 'registerTimer');
    let i = 0;
    while (i < timers.length && timers[i] < ts) i++;
    if (timers[i] === ts) return;
    if (i === timers.length) timers.push(ts);
    else timers.splice(i, 0, ts);
    this.dirty = true;
  }

  deleteTimer(expiryTimestampMs: number): void {
    const ts = this.timerTime(expiryTimestampMs, 'deleteTimer');
    const timers = this.keyTimers(null, 'deleteTimer');
    const i = timers.indexOf(ts);
    if (i < 0) return;
    if (i === timers.length - 1) timers.pop();
    else timers.splice(i, 1);
    this.dirty = true;
  }

  listTimers(): number[] {
    this.timerTime(0, 'listTimers');
    return this.keyTimers(null, 'listTimers').slice();
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

/** What the state variables share: their field in the current key's row, type checks and TTL on write. */
abstract class StateVariable {
  constructor(
    protected readonly handle: StatefulProcessorHandleImpl,
    protected readonly spec: VariableSpec,
  ) {}

  /** The variable as messages name it, e.g. `ValueState 'balance'`. */
  where(): string {
    return `${kindName(this.spec.kind)} '${this.spec.name}'`;
  }

  protected read(what: string): unknown {
    return this.handle.readRow(this, what)?.[this.spec.name];
  }

  protected has(what: string): boolean {
    return this.read(what) !== undefined;
  }

  protected write(what: string, stored: unknown): void {
    this.handle.setValue(this, what, this.spec.name, stored, this.spec.ttlMs);
  }

  protected remove(what: string): void {
    this.handle.clearValue(this, what, this.spec.name);
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
    const list = this.read('get()') as S[] | undefined;
    return list === undefined ? [] : list.slice();
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
