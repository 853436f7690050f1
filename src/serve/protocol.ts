// What the `baton serve` master tells a worker (environment) and what the
// worker reports back (IPC messages).

export interface WorkerConfig {
  app: string;
  /** Listening fds in the worker, in order. */
  fds: number[];
  backlog: number;
  /** Requests before the worker asks to be replaced (0: never). */
  maxRequests: number;
  timeoutMs: number;
  keepAliveTimeoutMs: number;
  gracefulTimeoutMs: number;
  /** Long-lived connections (WebSockets, event streams) are ended for the app this long into a drain. */
  drainTimeoutMs: number;
}

export type WorkerMessage = { type: 'listening' } | { type: 'recycle'; handled: number };
