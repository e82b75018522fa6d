export {
  type ExpiredTimerInfo,
  type ListState,
  type MapState,
  StatefulProcessor,
  type StatefulProcessorHandle,
  StatefulProcessorWithInitialState,
  type StateVariableOptions,
  TimeMode,
  type TimerValues,
  type TTLConfig,
  type ValueState,
} from '../plan/operators/transform-with-state-processor.js';
export type { StateTypeSpec } from '../plan/operators/transform-with-state-schema.js';
