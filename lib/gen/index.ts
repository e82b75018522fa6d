/** Deterministic data generators for the seed apps and benchmarks, and the writers that deliver their output. */

export * from './activity.js';
export * from './bank.js';
export * from './clickstream.js';
export * from './common.js';
export * from './datasets.js';
export * from './deposits.js';
export * from './disorder.js';
export * from './nexmark.js';
export * from './random.js';
export * from './session-events.js';
export * from './transactions.js';
export * from './utf8.js';
export * from './writers.js';
