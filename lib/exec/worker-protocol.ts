import { SluiceError, UserCodeError } from '../errors.js';
import type { SharedHashedRelation } from '../plan/operators/hashed-relation.js';
import type { PlanDescription } from '../plan/plan-description.js';
import type { StateStoreSettings } from '../state/state-store-cache.js';
import type { BatchContext, FragmentMetrics, FragmentSpec, StatefulMetrics } from './batch-context.js';
import type { SentBatch } from './batch-transfer.js';

/** How a worker finds the query of an app: it imports the app module and builds the same output again. */
export interface AppQuerySetup {
  /** URL of the app module. */
  module: string;
  /**
   * URL of the module whose `rebuildAppPlan(setup)` builds the app's query in a worker: the app layer's runner,
   * named by the app layer, which the pool's threads sit below.
   */
  planBuilder: string;
  /** The app's option values, as the driver parsed them. */
  options: Record<string, unknown>;
  /** Source URIs the driver resolved per input name (so inputs build identically). */
  inputs: Record<string, string>;
  /** Which of the app's outputs this query writes. */
  output: string;
  /**
   * The part of the output's plan the query runs when it is one stage of a group's app, as the app layer describes
   * it (plain data): the plan builder cuts the plan the same way, so operator ids match the driver's.
   */
  stage?: unknown;
}

/** How a worker finds a query built inline of column expressions: it rebuilds the plan from its description. */
export interface InlineQuerySetup {
  plan: PlanDescription;
}

/** What a worker needs to run a query's tasks. */
export type WorkerSetup = (AppQuerySetup | InlineQuerySetup) & { stateStore: StateStoreSettings };

/**
 * A task names its query (an id unique in the process) and carries the query's setup, because a worker
 * thread outlives the queries it runs: it builds a query's plan from the setup on the first task that names
 * the query, and keeps the query's state stores apart from those of other queries.
 */
export interface QueryTask {
  query: number;
  setup: WorkerSetup;
  /**
   * The hashed static sides of the query's stream-static joins, by join node id, in shared memory: only on the
   * first task a thread gets for the query, which keeps them for the query's life.
   */
  broadcasts?: [number, SharedHashedRelation][];
}

/**
 * A record batch a worker kept in its own memory instead of sending it: an exchange partition whose
 * stateful task runs on the same thread. The stateful task names it by `held` and the worker takes it
 * back, so those rows never leave its thread.
 */
export interface HeldBatch {
  held: number;
  numRows: number;
}

/** Exchange partitions p with p % lanes === lane stay in the thread that ran the fragment. */
export interface KeepPartitions {
  lane: number;
  lanes: number;
}

/** One state partition of one stateful node: [node id, partition]. */
export type StoreRef = readonly [number, number];

export type WorkerMessage =
  | (QueryTask & {
      kind: 'fragment';
      spec: FragmentSpec;
      input: SentBatch[];
      ctx: BatchContext;
      keep?: KeepPartitions;
    })
  | (QueryTask & {
      kind: 'stateful';
      nodeId: number;
      partition: number;
      input: (SentBatch | HeldBatch)[];
      ctx: BatchContext;
    })
  /** Loads state stores, named as [stateful node id, state partition], at `version` for the query's first batch. */
  | (QueryTask & {
      kind: 'openState';
      checkpointDir: string;
      stores: StoreRef[];
      version: number;
    })
  /** Drops the query's in-memory state and held batches (a failed batch), keeping its plan. */
  | { kind: 'reset'; query: number }
  /** Forgets the query: its plan and state stores. */
  | { kind: 'close'; query: number };

/** An error as it crosses the thread boundary: structured clone would drop its class and fields. */
export interface WorkerError {
  name: string;
  message: string;
  code?: string;
  hint?: string;
  operator?: string;
  batchId?: number;
  stack?: string;
}

/** The worker thread's CPU milliseconds in the task and since the thread started, and the task's wall milliseconds. */
export interface TaskCpu {
  cpuMs: number;
  threadCpuMs: number;
  wallMs: number;
}

export type WorkerReply =
  | ({
      kind: 'fragment';
      batches: SentBatch[];
      partitions?: (SentBatch | HeldBatch)[][];
      metrics: FragmentMetrics;
    } & TaskCpu)
  | ({ kind: 'stateful'; batches: SentBatch[]; late: SentBatch[]; metrics: StatefulMetrics } & TaskCpu)
  | { kind: 'openState' }
  | { kind: 'reset' }
  | { kind: 'close' }
  | { kind: 'error'; error: WorkerError };

/** Rebuilds the error a worker reported, with its class, so the driver reports it like an in-process one. */
export function reviveWorkerError(e: WorkerError): Error {
  if (e.name === 'UserCodeError' && e.operator !== undefined) {
    const err = new UserCodeError(
      e.operator,
      e.batchId ?? -1,
      new Error(e.message.replace(/^.*? failed in batch \d+: /, '')),
    );
    return err;
  }
  if (e.code) return new SluiceError(e.code, e.message, e.hint);
  const err = new Error(e.message);
  err.stack = e.stack;
  return err;
}

/** The error as a plain object that survives postMessage. */
export function toWorkerError(err: unknown): WorkerError {
  if (err instanceof UserCodeError)
    return {
      name: 'UserCodeError',
      message: err.message,
      code: err.code,
      operator: err.operator,
      batchId: err.batchId,
    };
  if (err instanceof SluiceError) return { name: err.name, message: err.message, code: err.code, hint: err.hint };
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message, stack: e.stack };
}
