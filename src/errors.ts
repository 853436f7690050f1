// Errors that end a command: one line for the user, the errno-style `code`
// for programs, and the documented exit status.
export class ExitCodeError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(message: string, code: string, exitCode: number) {
    super(message);
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** An errno-bearing exit status from a Node error: its errno, else 255 (Perl's `die`). */
export function errnoExit(e: unknown): number {
  return Math.abs((e as NodeJS.ErrnoException).errno ?? 0) || 255;
}
