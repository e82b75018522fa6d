export * from './batch-ops.js';
export * from './columns.js';
export * from './schema.js';
