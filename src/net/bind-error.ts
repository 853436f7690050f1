// A socket that could not be bound, as the one line a user needs: where,
// why, and for an address in use, what to do about it.
import { type BatonError, reason, systemError } from '../errors.ts';

/** `where` ends with what precedes the reason (e.g. "failed to bind to 8080:"); `advice` follows "another process listens there; ". */
export function bindError(e: unknown, where: string, advice: string): BatonError {
  const inUse = (e as NodeJS.ErrnoException).code === 'EADDRINUSE';
  return systemError(e, `${where}${reason(e)}${inUse ? ` (another process listens there; ${advice})` : ''}`);
}
