// The drill's load client: the engine (engine.ts) in one or more worker
// threads, so that the load can use more than one core and this thread stays
// free to drive deploys. Their recordings merge into one.
import { Worker } from 'node:worker_threads';
import type { LoadOptions } from './engine.ts';
import type { LoadThreadCommand, LoadThreadMessage } from './load-thread.ts';
import { Recording, type RecordingData } from './recording.ts';

export type { LoadOptions } from './engine.ts';

const THREAD_ENTRY = new URL(`./load-thread${import.meta.filename.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/** `total` split into `n` near-equal integer shares. */
function shares(total: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
}

export interface LoadResult {
  recording: Recording;
  /** The client's own CPU time (all its threads), in seconds. */
  cpuSeconds: number;
}

interface Thread {
  worker: Worker;
  requests: number;
  failed: number;
  ready: Promise<void>;
  done: Promise<RecordingData>;
}

export class LoadClient {
  private readonly threads: Thread[] = [];
  private readonly cpuStart = process.cpuUsage();

  /** Starts `workers` load threads; start() sets them going. */
  constructor(opts: LoadOptions, workers = 1) {
    const n = Math.max(1, Math.min(workers, opts.rate ? workers : opts.connections));
    const conns = shares(opts.connections, n);
    for (let i = 0; i < n; i++) {
      const data: LoadOptions = { ...opts, connections: conns[i] as number, rate: opts.rate ? opts.rate / n : 0 };
      const worker = new Worker(THREAD_ENTRY, { workerData: data });
      let ready = () => {};
      const thread: Thread = {
        worker,
        requests: 0,
        failed: 0,
        ready: new Promise<void>((resolve) => {
          ready = resolve;
        }),
        done: new Promise<RecordingData>((resolve, reject) => {
          worker.on('message', (m: LoadThreadMessage) => {
            if (m.type === 'ready') ready();
            else if (m.type === 'progress') {
              thread.requests = m.requests;
              thread.failed = m.failed;
            } else resolve(m.recording);
          });
          worker.once('error', reject);
          worker.once('exit', (code) => reject(new Error(`a drill load thread exited (${code}) before reporting`)));
        }),
      };
      // a thread that dies before it is ready must fail start(), not hang it
      thread.done.catch(() => ready());
      this.threads.push(thread);
    }
  }

  /**
   * Once every thread is up, starts the load; resolves to its time origin
   * (performance.now() of this thread), from which every time in the
   * recording counts.
   */
  async start(): Promise<number> {
    await Promise.all(this.threads.map((t) => t.ready));
    const t0 = performance.now();
    const command: LoadThreadCommand = { type: 'start', origin: performance.timeOrigin + t0 };
    for (const t of this.threads) t.worker.postMessage(command);
    return t0;
  }

  /** Requests ended so far, and how many failed (updated every 250 ms). */
  progress(): { requests: number; failed: number } {
    let requests = 0;
    let failed = 0;
    for (const t of this.threads) {
      requests += t.requests;
      failed += t.failed;
    }
    return { requests, failed };
  }

  /** Stops starting requests and waits for the ones in flight to end. */
  async stop(): Promise<LoadResult> {
    const command: LoadThreadCommand = { type: 'stop' };
    for (const t of this.threads) t.worker.postMessage(command);
    const parts = await Promise.all(this.threads.map((t) => t.done));
    const recording = new Recording();
    for (const p of parts) recording.merge(p);
    const cpu = process.cpuUsage(this.cpuStart);
    return { recording, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  }
}
