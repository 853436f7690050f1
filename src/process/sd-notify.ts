// sd_notify: a state line (READY=1, RELOADING=1, STOPPING=1) to the
// datagram socket in NOTIFY_SOCKET (systemd, start_server --ready-notify).
import { native } from '../net/native.ts';

/** Sends `state` with our MAINPID; no NOTIFY_SOCKET, no message. A failure is reported, never thrown. */
export function sdNotify(state: string, warn: (line: string) => void): void {
  const path = process.env.NOTIFY_SOCKET;
  if (!path) return;
  try {
    native.sendDatagram(path, `${state}\nMAINPID=${process.pid}`);
  } catch (e) {
    warn(`could not notify ${path}: ${(e as Error).message}`);
  }
}
