// Typed access to the C addon (native/baton.c). The addon is loaded with
// node-gyp-build: a prebuilt binary from prebuilds/ when the package ships one,
// otherwise the one compiled at install time into build/. Its errors carry
// errno and syscall; here they get their errno name as `code`, from Node's
// own table (the addon stays free of glibc's newer strerrorname_np).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';

export interface OpenSocketOptions {
  /** 4, 6, or 1 for AF_UNIX. */
  family: 4 | 6 | 1;
  type?: 'stream' | 'dgram' | 'seqpacket';
  host?: string;
  port?: number;
  /** AF_UNIX path; "@name" is an abstract address (per network namespace, no file). */
  path?: string;
  /** listen(2) with this backlog (stream sockets); omit to leave unlistened. */
  backlog?: number;
  reuseAddr?: boolean;
  reusePort?: boolean;
  v6only?: boolean;
  cloexec?: boolean;
  nonblock?: boolean;
  passCred?: boolean;
  /** Permissions of a UNIX socket path (never wider than this, even while it is created). */
  mode?: number;
}

export interface LocalAddress {
  family: number;
  address?: string;
  port?: number;
  path?: string;
}

export interface ReceivedMessage {
  data: string;
  fds: number[];
  pid?: number;
  uid?: number;
  gid?: number;
}

export interface SpawnOptions {
  /** [source fd in this process, fd number in the child]. */
  fds: Array<[number, number]>;
  setsid?: boolean;
}

export type CbpfInstruction = [code: number, jt: number, jf: number, k: number];

interface Addon {
  openSocket(options: OpenSocketOptions): number;
  localAddress(fd: number): LocalAddress;
  getsockoptInt(fd: number, level: number, name: number): number;
  setsockoptInt(fd: number, level: number, name: number, value: number): void;
  fdFlags(fd: number, set?: { cloexec?: boolean; nonblock?: boolean }): { cloexec: boolean; nonblock: boolean };
  dup2(oldFd: number, newFd: number): number;
  closeFd(fd: number): void;
  flock(fd: number, op: 'ex' | 'sh' | 'un', nonBlocking?: boolean): boolean;
  attachReuseportCbpf(fd: number, program: CbpfInstruction[]): void;
  detachReuseportBpf(fd: number): void;
  socketPair(): [number, number];
  pipe(): [readFd: number, writeFd: number];
  connectUnix(path: string, type?: 'stream' | 'dgram' | 'seqpacket'): number;
  sendFds(sock: number, fds: number[], data: string): number;
  recvMsg(sock: number): ReceivedMessage | null;
  sendDatagram(path: string, data: string): void;
  spawn(file: string, argv: string[], envp: string[], options: SpawnOptions): number;
  waitpid(pid: number, noHang: boolean): [pid: number, status: number] | null;
  tcpListenQueue(fd: number): number;
  /** Listening TCP sockets on `port` (0: every port) in this network namespace (sock_diag), with their inode and bound address. */
  tcpListeners(family: 4 | 6, port: number): Array<{ inode: number; address: string; port: number }>;
  /** Connected TCP sockets whose local port is `port` (accepted from a listener there, or still in its queue: inode 0), as tcpListeners lists them. */
  tcpConnections(family: 4 | 6, port: number): Array<{ inode: number; address: string; port: number }>;
  /** accept4 (CLOEXEC); null when nothing waits on a non-blocking listener. */
  acceptConn(fd: number): number | null;
  peerCred(fd: number): { pid: number; uid: number; gid: number };
  /** Bytes the kernel holds for this connection that the process has not read yet (FIONREAD). */
  unreadBytes(fd: number): number;
  shutdownFd(fd: number, how?: 'rd' | 'wr' | 'rdwr'): void;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const load = require('node-gyp-build') as (dir: string) => Addon;

function named(e: unknown): unknown {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.errno === 'number' && err.code === undefined) {
    try {
      err.code = getSystemErrorName(-Math.abs(err.errno));
    } catch {
      err.code = 'EUNKNOWN';
    }
  }
  return e;
}

const addon = load(root);
export const native = Object.fromEntries(
  Object.entries(addon).map(([name, fn]) => [
    name,
    (...args: unknown[]) => {
      try {
        return (fn as (...a: unknown[]) => unknown)(...args);
      } catch (e) {
        throw named(e);
      }
    },
  ]),
) as unknown as Addon;

/** Socket option constants from <asm-generic/socket.h> (x86_64, arm64). */
export const SOL_SOCKET = 1;
export const SO_TYPE = 3;
export const SO_ACCEPTCONN = 30;
export const SO_REUSEPORT = 15;
export const SO_INCOMING_CPU = 49;
export const SOCK_STREAM = 1;
