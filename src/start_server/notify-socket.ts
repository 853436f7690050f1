// The socket generations send sd_notify messages to (READY=1, STOPPING=1,
// STATUS=…), and who may speak for which generation. A message counts as a
// generation's own when it comes from that generation's pid under our uid,
// or carries its token (BATON_READY_TOKEN: the container of a `docker run`
// generation sends from a pid we never knew). Anyone may write to the
// socket; what counts is who sent a message or what it holds. Messages of
// generations we remember (an old container's late STOPPING=1) are taken
// quietly; anyone else's are logged and ignored.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../net/native.ts';
import { claimSocketPath } from '../net/socket-path.ts';

/** Who a message may speak for: a generation's pid and token. */
export interface NotifyIdentity {
  pid: number;
  token: string;
}

/** What a generation said: its state lines (READY=1, STATUS=…). */
export interface Notification {
  from: NotifyIdentity;
  lines: string[];
}

export class NotifySocket {
  readonly path: string;
  readonly fd: number;
  readonly dir: string | undefined;

  /**
   * At `path` (a path a container can have mounted), or in a private
   * directory; `adopt`: the socket an earlier exec of ours had open.
   */
  constructor(path: string | undefined, adopt?: { fd: number; path: string; dir: string | undefined }) {
    if (adopt) {
      this.fd = adopt.fd;
      this.path = adopt.path;
      this.dir = adopt.dir;
      return;
    }
    this.dir = path === undefined ? mkdtempSync(join(tmpdir(), 'baton-notify-')) : undefined;
    this.path = path ?? join(this.dir as string, 'notify.sock');
    if (this.dir === undefined) claimSocketPath(this.path);
    this.fd = native.openSocket({ family: 1, type: 'dgram', path: this.path, passCred: true, nonblock: true, mode: 0o622 });
  }

  close(): void {
    native.closeFd(this.fd);
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    else claimSocketPath(this.path);
  }

  /**
   * Reads every message waiting. Each one from a generation in `live` is
   * returned; one from a generation we merely remember (`known`) is dropped
   * quietly; any other is passed to `stranger`.
   */
  drain(
    live: readonly NotifyIdentity[],
    known: (pid: number | undefined, token: string | undefined) => boolean,
    stranger: (pid: number | undefined, uid: number | undefined) => void,
  ): Notification[] {
    const out: Notification[] = [];
    const uid = process.getuid?.();
    for (let m = native.recvMsg(this.fd); m; m = native.recvMsg(this.fd)) {
      for (const fd of m.fds) native.closeFd(fd);
      const lines = m.data.split('\n');
      const token = lines.find((l) => l.startsWith('BATON_READY_TOKEN='))?.slice('BATON_READY_TOKEN='.length);
      const ours = m.uid === uid;
      const from = live.find((g) => (ours && m.pid === g.pid) || (token !== undefined && token === g.token));
      if (from) out.push({ from, lines });
      else if (!((ours && known(m.pid, undefined)) || (token !== undefined && known(undefined, token)))) stranger(m.pid, m.uid);
    }
    return out;
  }
}
