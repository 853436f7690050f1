// The process-wide drain signal: aborted when this process starts draining
// (a `baton serve` worker told to stop, or any graceful() shutdown), so an
// app can end what only it can end cleanly: WebSockets with close code 1001
// (Going Away), event streams, long polls. Clients then reconnect at once,
// to the new generation.
//
// One signal per process, even when the app loads another copy of baton than
// the one serving it (dist and src, or two installs): it lives on globalThis.
const KEY = Symbol.for('baton.draining');

function controller(): AbortController {
  const g = globalThis as unknown as Record<symbol, AbortController | undefined>;
  g[KEY] ??= new AbortController();
  return g[KEY];
}

/** Aborted once this process drains; `draining.reason` says why. */
export const draining: AbortSignal = controller().signal;

/** Starts the drain signal (once; later calls do nothing). */
export function startDraining(why: string): void {
  const c = controller();
  if (!c.signal.aborted) c.abort(new Error(`draining: ${why}`));
}
