// How long a stopping `baton serve` may take, from its TERM to its exit:
// --shutdown-delay (serving on, unready), then the drain, which
// --graceful-timeout bounds, then its workers' exit. A manager's KILL
// (systemd's TimeoutStopSec=, Kubernetes' terminationGracePeriodSeconds,
// swarm's stop_grace_period) must come later, or it cuts the drain short.
// The options' own table lives with baton serve; this reads the two of
// them from a command line, as baton serve would.
import { type OptionTable, parseOptions } from '../cli-kit/options.ts';
import { GRACEFUL_TIMEOUT_S } from '../defaults.ts';

/** Past the drain's bound: the workers' exit, the master's, a loaded machine. */
export const STOP_MARGIN_S = 5;

const STOP_OPTIONS = {
  'graceful-timeout': { kind: 'seconds', default: GRACEFUL_TIMEOUT_S, help: '' },
  'shutdown-delay': { kind: 'seconds', default: 0, help: '' },
} as const satisfies OptionTable;

export interface StopBudget {
  shutdownDelay: number;
  gracefulTimeout: number;
  /** Seconds from TERM to exit, at most. */
  seconds: number;
}

/**
 * The budget of the `baton serve` in `command` (a whole command line: the
 * words after `serve`), or undefined when it runs no baton serve. `before`
 * is time the manager spends before the TERM (a Kubernetes preStop hook).
 */
export function stopBudget(command: readonly string[], before = 0): StopBudget | undefined {
  const at = command.indexOf('serve');
  if (at < 0) return undefined;
  const words = command.slice(at + 1);
  const end = words.indexOf('--');
  // The option table of baton serve has more options than these two: their errors do not matter here.
  const { values } = parseOptions(STOP_OPTIONS, end < 0 ? words : words.slice(0, end));
  const shutdownDelay = values['shutdown-delay'];
  const gracefulTimeout = values['graceful-timeout'];
  return { shutdownDelay, gracefulTimeout, seconds: Math.ceil(before + shutdownDelay + gracefulTimeout + STOP_MARGIN_S) };
}
