export * from './batch-ops.js';
export * from './batch-rows.js';
export * from './columns.js';
export * from './deferred-gather.js';
export * from './schema.js';
