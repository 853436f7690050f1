// sd_notify: a state line (READY=1, RELOADING=1, STOPPING=1) to the
// datagram socket in NOTIFY_SOCKET (systemd, start_server --ready-notify).
// Under start_server the message also carries the generation's token
// (BATON_READY_TOKEN), which is how its readiness counts when it is sent by
// a process that is not the generation itself (the container of a `docker
// run` generation).
import { native } from '../net/native.ts';

/** Sends `state` with our MAINPID; no NOTIFY_SOCKET, no message. A failure is reported, never thrown. */
export function sdNotify(state: string, warn: (line: string) => void): void {
  const path = process.env.NOTIFY_SOCKET;
  if (!path) return;
  const token = process.env.BATON_READY_TOKEN;
  try {
    native.sendDatagram(path, `${state}\nMAINPID=${process.pid}${token ? `\nBATON_READY_TOKEN=${token}` : ''}`);
  } catch (e) {
    warn(`could not notify ${path}: ${(e as Error).message}`);
  }
}
