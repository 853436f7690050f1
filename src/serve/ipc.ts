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
  /** HTTPS with this certificate and key (PEM); with `http2`, h2 and HTTP/1.1 by ALPN. */
  tls: { certFile: string; keyFile: string } | undefined;
  /** HTTP/2 (h2c without tls). */
  http2: boolean;
  /** Keep-alive clients are told to leave each at a random moment within this long. */
  closeSpreadMs: number;
  /** Answered by the worker itself, before the app: 200 while it serves, 503 once the instance is going away. */
  readyPath: string | undefined;
  /** Started while the instance is going away (--shutdown-delay): unready from the start. */
  unready: boolean;
  /** An app that listens by itself: its listen on this port is the one served (default: its first). */
  appPort: number | undefined;
  /** An app that exports nothing must call listen() within this long. */
  listenTimeoutMs: number;
  /** Boot at this nice value (beside a serving generation), back to `normalNice` before listening. */
  bootNice: number | undefined;
  /**
   * Born at `bootNice` already (the master was low when it started us): not
   * lowered again, since the master may have brought us back from a starved
   * boot before our first line ran, and it watches only once.
   */
  bornLow: boolean;
  normalNice: number;
}

/** What the master tells a worker over IPC (besides TERM). */
export type MasterMessage = { type: 'stop' } | { type: 'unready' };

export type WorkerMessage =
  | { type: 'listening' }
  | { type: 'recycle'; handled: number }
  /** Once a second under --metrics: its open connections. */
  | { type: 'stats'; connections: number }
  /** It cannot start: one line saying why (a module that cannot be loaded). */
  | { type: 'failed'; message: string };
