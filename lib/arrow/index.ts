export * from './schema.js';
export * from './columns.js';
export * from './batch-ops.js';
