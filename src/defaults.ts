// The defaults that more than one place uses, written once: the option
// tables (and so each command's --help) and the library read them from here.
// Seconds, as the options take them.

/** A draining worker (or graceful()) gives up on what is still open after this long. */
export const GRACEFUL_TIMEOUT_S = 30;
/** On stop, the longest wait for a newer instance to take a SO_REUSEPORT port (and, with cbpf, to join it). */
export const HANDOVER_TIMEOUT_S = 30;
/** Long-lived connections (WebSockets, event streams) are ended for the app this long into a drain. */
export const DRAIN_TIMEOUT_S = 10;
/** The idle keep-alive timeout a server announces. */
export const KEEPALIVE_TIMEOUT_S = 5;
/** The longest a whole deploy may take, for `baton deploy` and `baton drill`. */
export const DEPLOY_TIMEOUT_S = 120;
/** A generation that does not report ready within this long is given up on. */
export const READY_TIMEOUT_S = 60;
