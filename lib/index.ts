/** sluice's public API. */

export { DataFrameReader } from './api/data-frame-reader.js';
export {
  Dataset,
  type JoinHow,
  KeyValueGroupedDataset,
  RelationalGroupedDataset,
  type TransformWithStateOptions,
} from './api/dataset.js';
export * from './api/functions.js';
export { type GroupState, GroupStateTimeout } from './api/group-state.js';
export { Session } from './api/session.js';
export type { SessionOptions } from './api/session-state.js';
export * from './api/stateful-processor.js';
export { DataStreamReader } from './api/stream-reader.js';
export { DataStreamWriter, type TriggerSpec } from './api/stream-writer.js';
export { StreamingQuery, type StreamingQueryListener, StreamingQueryManager } from './api/streaming-query.js';
export {
  type AppContext,
  type AppDefinition,
  type AppInput,
  type AppOption,
  type AppOutput,
  defineApp,
} from './app/app.js';
export { type AppGroupMember, type AppGroupOptions, runAppInGroup } from './app/app-group.js';
export { loadApp, type RunAppOptions, runApp } from './app/app-runner.js';
export { sampleData } from './app/sample-data.js';
export { SluiceError, UserCodeError } from './errors.js';
export type { QueryProgress, SourceProgress, StateOperatorProgress } from './exec/progress.js';
export type { OutputMode } from './sinks/output-mode.js';
export type { SinkContext, StreamSink } from './sinks/sink.js';
export type { ReadResult, ReadTask, SourceContext, StreamSource } from './sources/source.js';
