export { MemoryStream } from './memory-stream.js';
export { ManualClock } from './manual-clock.js';
