export * from './batch-ops.js';
export * from './batch-rows.js';
export * from './columns.js';
export * from './schema.js';
