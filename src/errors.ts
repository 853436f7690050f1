// One error model for every command, and one registry of what can go wrong.
// An error that ends a command is a BatonError: a stable `code` that programs
// can test, a one-line message for people, and the exit status the command
// documents. Every code baton throws is in ERRORS below, with its exit status
// and its meaning; docs/errors.md is checked against this table, so the two
// cannot drift. A failed system call keeps its errno name as its code and its
// errno as its exit status, as Perl's `die` does (systemError). cli-kit/run.ts
// prints the line and exits with the status; any other error is a bug.

export const ERRORS = {
  ERR_BATON_USAGE: { exit: 1, meaning: 'a bad option or argument (start_server: 255 where upstream exits 255)' },
  ERR_BATON_PORT: { exit: 255, meaning: 'a bad `--port` value, or a host that does not resolve' },
  ERR_BATON_SERVER_STARTER_PORT: {
    exit: 1,
    meaning: '`SERVER_STARTER_PORT` malformed, or naming an fd that is not a listening socket',
  },
  ERR_BATON_LISTEN_FDS: { exit: 1, meaning: '`LISTEN_FDS` malformed, or its fds not listening sockets' },
  ERR_BATON_APP: {
    exit: 1,
    meaning: 'the app module cannot be loaded (missing, a syntax error, a missing dependency, it throws at start) or serves nothing',
  },
  ERR_BATON_TLS: { exit: 1, meaning: '`--tls-cert`/`--tls-key` cannot be read, or are not a certificate and its key' },
  ERR_BATON_HANDOFF: { exit: 1, meaning: 'a socket handoff that could not happen' },
  ERR_BATON_HANDOVER: { exit: 1, meaning: 'a `--handover` mechanism this machine lacks' },
  ERR_BATON_REUSEPORT_JOIN: {
    exit: 16,
    meaning: 'a cbpf handover could not join the port in time (its group never came down to one member)',
  },
  ERR_BATON_COMMAND_NOT_FOUND: { exit: 127, meaning: 'the command to run is not on PATH' },
  ERR_BATON_PID_FILE: { exit: 11, meaning: 'the pid file is locked by a running start_server (11), or cannot be written (its errno)' },
  ERR_BATON_CLIENT: { exit: 255, meaning: '`--stop`/`--restart` could not reach the server (255, or the errno)' },
  ERR_BATON_STATUS: { exit: 3, meaning: '`baton status` could not read the status file' },
  ERR_BATON_NO_SUPERVISOR: {
    exit: 3,
    meaning: '`baton deploy`/`status`: no supervisor (of ours) listens on the control socket beside the pid file',
  },
  ERR_BATON_DRILL_SERVER: { exit: 3, meaning: '`baton drill`: the server it was to drill never answered' },
  ERR_BATON_UPGRADE: {
    exit: 8,
    meaning: '`baton upgrade`: the new program failed its check (the old supervisor runs on unchanged), or did not answer',
  },
  ERR_BATON_STOPPED: { exit: 130, meaning: 'stopped by a signal before there was anything to report (128 + the signal)' },
} as const satisfies Record<string, { exit: number; meaning: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class BatonError extends Error {
  /** A code from ERRORS, or the errno name of a failed system call. */
  readonly code: string;
  readonly exitCode: number;
  /** `exit` overrides the registry's status, where a command documents another (start_server's 255s, an errno). */
  constructor(code: ErrorCode, message: string, exit?: number) {
    super(message);
    this.name = 'BatonError';
    this.code = code;
    this.exitCode = exit ?? ERRORS[code].exit;
  }
}

/** An errno-bearing exit status from a Node or addon error: its errno, else 255 (Perl's `die`). */
export function errnoExit(e: unknown): number {
  return Math.abs((e as NodeJS.ErrnoException).errno ?? 0) || 255;
}

/** A system call's failure: the errno name is its code. */
class SystemCallError extends BatonError {
  override readonly code: string;
  constructor(errnoName: string, message: string, exit: number) {
    super('ERR_BATON_USAGE', message, exit);
    this.code = errnoName;
  }
}

/** A failed system call as a BatonError: its errno name as the code, its errno as the exit status unless given. */
export function systemError(e: unknown, message: string, exitCode = errnoExit(e)): BatonError {
  return new SystemCallError((e as NodeJS.ErrnoException).code ?? 'EUNKNOWN', message, exitCode);
}

/** An error named for an errno (EEXIST, ENOENT) that no system call returned here. */
export function errnoError(errnoName: string, message: string, exitCode: number): BatonError {
  return new SystemCallError(errnoName, message, exitCode);
}

/** The reason of a failed system call without the addon's "syscall: " prefix. */
export function reason(e: unknown): string {
  return (e as Error).message.replace(/^[a-z_()0-9]+: /i, '');
}
