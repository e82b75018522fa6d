export { ManualClock } from './manual-clock.js';
export { MemoryStream } from './memory-stream.js';
