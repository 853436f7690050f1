// One error model for every command. An error that ends a command is a
// BatonError: a stable `code` that programs can test (the README lists
// them), a one-line message for people, and the exit status the command
// documents. cli-kit/run.ts prints the line and exits with the status; any
// other error is a bug.
export class BatonError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(message: string, code: string, exitCode: number) {
    super(message);
    this.name = 'BatonError';
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** An errno-bearing exit status from a Node or addon error: its errno, else 255 (Perl's `die`). */
export function errnoExit(e: unknown): number {
  return Math.abs((e as NodeJS.ErrnoException).errno ?? 0) || 255;
}

/** A failed system call as a BatonError: its errno name as the code, its errno as the exit status unless given. */
export function systemError(e: unknown, message: string, exitCode = errnoExit(e)): BatonError {
  return new BatonError(message, (e as NodeJS.ErrnoException).code ?? 'EUNKNOWN', exitCode);
}

/** The reason of a failed system call without the addon's "syscall: " prefix. */
export function reason(e: unknown): string {
  return (e as Error).message.replace(/^[a-z_()0-9]+: /i, '');
}
