// One load thread of a drill (client.ts starts them): runs an Engine on its
// share of the connections or of the rate, reports progress, and hands its
// recording back when told to stop.
import { parentPort, workerData } from 'node:worker_threads';
import { Engine, type LoadOptions } from './engine.ts';
import type { RecordingData } from './recording.ts';

// undici makes an Error for every connection that closes; capturing their
// stacks was a fifth of this thread's CPU without keep-alive, and nothing
// here reads a stack.
Error.stackTraceLimit = 0;

/** To the thread: start (with the load's time origin, performance.timeOrigin + performance.now(), the same clock in every thread), then stop. */
export type LoadThreadCommand = { type: 'start'; origin: number } | { type: 'stop' };

export type LoadThreadMessage =
  | { type: 'ready' }
  | { type: 'progress'; requests: number; failed: number }
  | { type: 'done'; recording: RecordingData };

const port = parentPort as NonNullable<typeof parentPort>;
const post = (m: LoadThreadMessage) => port.postMessage(m);
let engine: Engine | undefined;
let progress: NodeJS.Timeout | undefined;

port.on('message', async (m: LoadThreadCommand) => {
  if (m.type === 'start') {
    const offset = performance.timeOrigin - m.origin;
    const e = new Engine(workerData as LoadOptions, () => offset + performance.now());
    engine = e;
    progress = setInterval(() => post({ type: 'progress', requests: e.recording.requests, failed: e.recording.failed }), 250);
    e.start();
  } else if (engine) {
    await engine.stop();
    clearInterval(progress);
    post({ type: 'done', recording: engine.recording.toData() });
    port.close();
  }
});
post({ type: 'ready' });
