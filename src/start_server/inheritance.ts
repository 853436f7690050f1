// What a generation inherits: Server::Starter's contract with the servers it
// runs, and what baton adds to it. Children get the supervisor's environment
// (envdir applied) with SERVER_STARTER_PORT (`key=fd;…`, set even when empty)
// and SERVER_STARTER_GENERATION, the listening sockets at their fd numbers
// (blocking, not close-on-exec), and, where there is a notify socket,
// NOTIFY_SOCKET with the generation's own BATON_READY_TOKEN. They never get
// the variables of the supervisor's own service manager (NOTIFY_SOCKET,
// WATCHDOG_USEC, … are for the supervisor to answer, not its children).
import type { Listener } from '../net/listeners.ts';
import { serverStarterPort } from '../net/listeners.ts';
import { devNullFd } from '../process/spawn.ts';
import { MANAGER_ENV } from './service-manager.ts';
import type { StderrTail } from './stderr-tail.ts';
import type { Env } from './upstream-env.ts';

export interface Inheritance {
  listeners: readonly Listener[];
  generation: number;
  /** The generation serving now, where the supervisor waits for readiness (not timed by --interval): baton serve then boots at low priority. */
  serving: number | undefined;
  /** The notify socket's path and this generation's token, when there is one. */
  notify: { path: string; token: string } | undefined;
  /** --metrics: baton serve reports connections and restarts on the notify socket. */
  metrics: boolean;
}

export function generationEnv(base: Env, i: Inheritance): Env {
  const env: Env = {
    ...base,
    ...Object.fromEntries(MANAGER_ENV.map((k) => [k, undefined])),
    SERVER_STARTER_PORT: serverStarterPort(i.listeners),
    SERVER_STARTER_GENERATION: String(i.generation),
    BATON_METRICS: i.metrics ? '1' : base.BATON_METRICS,
    BATON_SERVING_GENERATION: i.serving === undefined ? undefined : String(i.serving),
  };
  if (i.notify) {
    env.NOTIFY_SOCKET = i.notify.path;
    env.BATON_READY_TOKEN = i.notify.token;
  }
  return env;
}

/**
 * The fds a generation starts with, as [ours, theirs]: each listener at its
 * number; stdin from /dev/null for a daemon (unless a socket takes fd 0); and
 * stderr through the tail kept for `baton deploy` (unless a socket takes fd 2).
 */
export function generationFds(
  listeners: readonly Listener[],
  stdinDevNull: boolean,
  tail: StderrTail | undefined,
): Array<[number, number]> {
  const fds: Array<[number, number]> = listeners.map((l) => [l.fd, l.childFd]);
  if (stdinDevNull && !listeners.some((l) => l.childFd === 0)) fds.push([devNullFd(), 0]);
  if (tail && !listeners.some((l) => l.childFd === 2)) fds.push([tail.childFd, 2]);
  return fds;
}
