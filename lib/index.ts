/** sluice's public API. */
export { Session } from './api/session.js';
export type { SessionOptions } from './api/session-state.js';
export { Dataset, KeyValueGroupedDataset, RelationalGroupedDataset } from './api/dataset.js';
export { DataStreamReader } from './api/stream-reader.js';
export { DataStreamWriter, type TriggerSpec } from './api/stream-writer.js';
export { StreamingQuery, StreamingQueryManager, type StreamingQueryListener } from './api/streaming-query.js';
export * from './api/functions.js';
export { GroupStateTimeout, type GroupState } from './api/group-state.js';
export { defineApp, type AppDefinition, type AppContext, type AppInput, type AppOutput, type AppOption } from './app/app.js';
export { runApp, loadApp } from './app/app-runner.js';
export { SluiceError, UserCodeError } from './errors.js';
export type { QueryProgress, SourceProgress, StateOperatorProgress } from './exec/progress.js';
export type { StreamSink, SinkContext } from './sinks/sink.js';
export type { OutputMode } from './sinks/output-mode.js';
export type { StreamSource, SourceContext, ReadTask, ReadResult } from './sources/source.js';
