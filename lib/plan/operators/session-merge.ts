/**
 * Session-window aggregation (Spark's SessionWindowStateStoreSaveExec, with the merge of its
 * MergingSessionsIterator): a key's rows and its stored sessions are swept in start order, and whatever
 * overlaps merges into one session. A key's state is its open sessions, sorted and disjoint.
 */
import type { RecordBatch } from 'apache-arrow';
import type { Partial } from '../aggregates/aggregate-functions.js';
import { keysToEvict } from '../stateful-operator.js';
import type { SessionWindowGrouping } from '../windows.js';
import { type BatchKeys, type LocalKeys, makeKey, splitKey } from './aggregate-keys.js';
import { isSchemaKey } from './aggregate-output.js';
import { AggregationRun, iso } from './aggregation-run.js';

/** An open session of a key as stored: [start, end, buffers]. */
type StoredSession = [number, number, unknown[]];

/**
 * The partition's rows by one number across batches (batch b's row i is offsets[b] + i): local key id
 * (-1 for a row left out as late), event time, and the end of the session the row alone would open.
 */
interface SessionRows {
  offsets: number[];
  kid: Int32Array;
  ts: Float64Array;
  end: Float64Array;
  /** On-time rows per local key. */
  kidCount: number[];
}

/** Row numbers of each key together (key kid's are order[kidStart[kid]] to order[kidStart[kid + 1] - 1]), by event time. */
interface RowOrder {
  order: Int32Array;
  kidStart: Int32Array;
}

/**
 * Per key, its sessions after this batch's rows, as flat lists (no object per session): plan p of key kid
 * (kidPlans[kid] <= p < kidPlans[kid + 1]) spans [start[p], end[p]], absorbs the key's stored sessions
 * [from[p], to[p]) (sorted and disjoint, so a contiguous run), and its new rows form local group group[p]
 * (-1 when it has none); groupOfRow gives each row's group.
 */
interface SessionPlans {
  kidPlans: Int32Array;
  start: number[];
  end: number[];
  group: number[];
  from: number[];
  to: number[];
  groupOfRow: Int32Array;
  numGroups: number;
}

/** Rows grouped by key (counting sort, arrival order kept), then each key's rows by event time. */
function orderByKeyAndTime(rows: SessionRows, numKids: number): RowOrder {
  const { kid: kidOfRow, ts: tsOf, kidCount } = rows;
  const kidStart = new Int32Array(numKids + 1);
  for (let kid = 0; kid < kidCount.length; kid++) kidStart[kid + 1] = kidStart[kid] + kidCount[kid];
  const fill = kidStart.slice(0, numKids);
  const order = new Int32Array(kidStart[numKids]);
  for (let g = 0; g < kidOfRow.length; g++) {
    const kid = kidOfRow[g];
    if (kid >= 0) order[fill[kid]++] = g;
  }
  for (let kid = 0; kid < numKids; kid++) {
    const lo = kidStart[kid];
    const hi = kidStart[kid + 1];
    let sorted = true;
    for (let j = lo + 1; j < hi && sorted; j++) sorted = tsOf[order[j - 1]] <= tsOf[order[j]];
    if (!sorted) order.subarray(lo, hi).sort((x, y) => tsOf[x] - tsOf[y] || x - y);
  }
  return { order, kidStart };
}

/** Sweeps each key's stored sessions and rows in start order, merging what touches (see {@link SessionPlans}). */
function mergeSessions(rows: SessionRows, { order, kidStart }: RowOrder, storedOf: StoredSession[][]): SessionPlans {
  const { ts: tsOf, end: endOf } = rows;
  const numKids = storedOf.length;
  const kidPlans = new Int32Array(numKids + 1);
  const planStart: number[] = [];
  const planEnd: number[] = [];
  const planGroup: number[] = [];
  const planFrom: number[] = [];
  const planTo: number[] = [];
  const groupOfRow = new Int32Array(rows.kid.length).fill(-1);
  let numGroups = 0;
  for (let kid = 0; kid < numKids; kid++) {
    kidPlans[kid] = planStart.length;
    const stored = storedOf[kid];
    const hi = kidStart[kid + 1];
    let cur = -1;
    let si = 0;
    let ri = kidStart[kid];
    while (si < stored.length || ri < hi) {
      const takeStored = ri >= hi || (si < stored.length && stored[si][0] <= tsOf[order[ri]]);
      const start = takeStored ? stored[si][0] : tsOf[order[ri]];
      const end = takeStored ? stored[si][1] : endOf[order[ri]];
      if (cur < 0 || start > planEnd[cur]) {
        cur = planStart.length;
        planStart.push(start);
        planEnd.push(end);
        planGroup.push(-1);
        planFrom.push(si);
        planTo.push(si);
      } else if (end > planEnd[cur]) planEnd[cur] = end;
      if (takeStored) planTo[cur] = ++si;
      else {
        if (planGroup[cur] < 0) planGroup[cur] = numGroups++;
        groupOfRow[order[ri++]] = planGroup[cur];
      }
    }
  }
  kidPlans[numKids] = planStart.length;
  return {
    kidPlans,
    start: planStart,
    end: planEnd,
    group: planGroup,
    from: planFrom,
    to: planTo,
    groupOfRow,
    numGroups,
  };
}

/** Aggregation by key and session window. */
export class SessionAggregationRun extends AggregationRun {
  run(keyed: BatchKeys[], keys: LocalKeys): RecordBatch[] {
    const kidComponents = keys.components;
    const rows = this.collectRows(keyed, keys);
    const order = orderByKeyAndTime(rows, kidComponents.length);
    const storedOf = kidComponents.map((c) => (this.state.get(makeKey(c)) as StoredSession[] | undefined) ?? []);
    const plans = mergeSessions(rows, order, storedOf);
    const groupsPerBatch = keyed.map((k, b) => [
      plans.groupOfRow.subarray(rows.offsets[b], rows.offsets[b] + k.batch.numRows),
    ]);
    const parts = this.partials(keyed, groupsPerBatch, plans.numGroups);
    this.updateSessions(kidComponents, storedOf, plans, parts);
    // Keys this batch touched are not due: closeSessions left each with sessions the watermark has not
    // closed (timeout after it) or removed it.
    if (this.evicts && Number.isFinite(this.wm)) {
      for (const key of keysToEvict(this.ctx, this.wm)) {
        this.closeSessions(key, splitKey(key, this.shape.componentCount), this.state.get(key) as StoredSession[]);
      }
    }
    if (this.mode === 'complete') this.emitAll();
    return this.finish(keyed);
  }

  /** Numbers the rows across batches and reads their keys, times and session ends; marks late rows. */
  private collectRows(keyed: BatchKeys[], keys: LocalKeys): SessionRows {
    const gapMs = (this.shape.window as SessionWindowGrouping).gapMs!;
    const offsets: number[] = [];
    let total = 0;
    for (const k of keyed) {
      offsets.push(total);
      total += k.batch.numRows;
    }
    const kidOfRow = new Int32Array(total).fill(-1);
    const tsOf = new Float64Array(total);
    const endOf = new Float64Array(total);
    const kidCount: number[] = [];
    keyed.forEach((k, b) => {
      const n = k.batch.numRows;
      const times = k.times!;
      for (let i = 0; i < n; i++) {
        if (times.valid && !times.valid[i]) {
          this.markLate(b, i, 'event time is null', false);
          continue;
        }
        if (k.gaps && Number.isNaN(k.gaps[i])) {
          this.markLate(b, i, 'session gap is null, not a duration, or not positive', false);
          continue;
        }
        // Sessions merge, so a row is judged by its time, not by one window: a row at or before W - L could
        // touch a session already evicted (end + L <= W), and must not start a second copy of it.
        const ts = times.vals[i];
        if (this.evicts && ts <= this.wm - this.lateness) {
          this.markLate(
            b,
            i,
            `behind the watermark: event time ${iso(ts)} is at or before ${iso(this.wm - this.lateness)}` +
              (this.lateness > 0
                ? ` (the watermark minus the allowed lateness of ${this.lateness} ms)`
                : ' (the watermark)'),
            true,
          );
          continue;
        }
        const kid = keys.of(k, i);
        if (kid === kidCount.length) kidCount.push(0);
        const g = offsets[b] + i;
        kidOfRow[g] = kid;
        tsOf[g] = ts;
        endOf[g] = ts + (k.gaps ? k.gaps[i] : gapMs);
        kidCount[kid]++;
      }
    });
    return { offsets, kid: kidOfRow, ts: tsOf, end: endOf, kidCount };
  }

  /**
   * Makes each plan a session: the first stored session it absorbs takes in the others and the plan's
   * partials, or a new session holds the partials; then stores each key's sessions (see closeSessions).
   */
  private updateSessions(
    kidComponents: unknown[][],
    storedOf: StoredSession[][],
    plans: SessionPlans,
    parts: Partial[],
  ): void {
    const { kidPlans, start: planStart, end: planEnd, group: planGroup, from: planFrom, to: planTo } = plans;
    // Update mode is refused for sessions (a merge would leave the sessions it replaced in the sink): only a
    // changelog emits as sessions change, retracting what a merge replaces.
    const changelog = this.mode === 'changelog';
    for (let kid = 0; kid < kidComponents.length; kid++) {
      const components = kidComponents[kid];
      const stored = storedOf[kid];
      const next: StoredSession[] = [];
      for (let p = kidPlans[kid]; p < kidPlans[kid + 1]; p++) {
        const g = planGroup[p];
        const from = planFrom[p];
        const to = planTo[p];
        // Retractions first: merging changes the stored buffers in place.
        if (g >= 0 && changelog)
          for (let i = from; i < to; i++)
            this.rows.push(components, { start: stored[i][0], end: stored[i][1] }, stored[i][2], -1);
        let session: StoredSession;
        if (from < to) {
          session = stored[from];
          for (let i = from + 1; i < to; i++) this.mergeBuffers(session[2], stored[i][2]);
          if (g >= 0) this.mergePartials(session[2], parts, g);
          session[0] = planStart[p];
          session[1] = planEnd[p];
        } else session = [planStart[p], planEnd[p], this.buffersOf(parts, g)];
        if (g >= 0 && changelog) this.rows.push(components, { start: session[0], end: session[1] }, session[2], 1);
        next.push(session);
      }
      this.closeSessions(makeKey(components), components, next);
    }
  }

  /** Emits and drops the sessions of a key that the watermark closed; stores the rest. */
  private closeSessions(key: unknown, components: unknown[], sessions: StoredSession[]): void {
    let open = sessions;
    for (const s of sessions) {
      if (!this.closed(s[1])) continue;
      if (this.mode === 'append') this.rows.push(components, { start: s[0], end: s[1] }, s[2]);
      else if (this.mode === 'changelog') this.rows.push(components, { start: s[0], end: s[1] }, s[2], -1);
      if (open === sessions) open = [];
    }
    if (open !== sessions) for (const s of sessions) if (!this.closed(s[1])) open.push(s);
    if (open.length === 0) {
      this.state.remove(key);
      return;
    }
    let minEnd = Infinity;
    for (const s of open) minEnd = Math.min(minEnd, s[1]);
    this.state.put(key, open, this.evicts ? minEnd + this.lateness : -1);
  }

  /** Complete mode: every key's sessions, in key order. */
  private emitAll(): void {
    const numComponents = this.shape.componentCount;
    for (const [key, sessions] of this.state.state.sortedEntries()) {
      if (isSchemaKey(key)) continue;
      for (const s of sessions as StoredSession[])
        this.rows.push(splitKey(key, numComponents), { start: s[0], end: s[1] }, s[2]);
    }
  }
}
