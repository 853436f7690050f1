// --log-file=FILE that logrotate can rotate: the supervisor's output and its
// generations' go into one pipe, and the supervisor copies the pipe to the
// file. On SIGUSR1 (logrotate's postrotate, after it moved the file away)
// the file is opened again at its path and the copy goes on there: the
// generations keep writing to the same pipe, so nothing they write is lost
// or left behind in the old file, and no line is cut in two (each chunk read
// is written whole to one file or the other). What the file cannot take (a
// full disk) is dropped, never blocking the writers, and the first thing
// written once it takes data again is a line saying how many lines were
// lost and why.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { systemError } from '../errors.ts';
import { native } from '../net/native.ts';
import { droppedLine } from '../process/log.ts';

export class LogFile {
  private readonly path: string;
  fd: number;
  /** The pipe's write end: what the supervisor and its children write to (dup2'd onto fds 1 and 2). */
  readonly writeFd: number;
  private readonly reader: Socket;
  readonly readFd: number;
  /** Lines the file could not take (a full disk): dropped, never blocking the writers, and said once it takes lines again. */
  dropped = 0;
  private why = '';

  /** `adopt`: the file and pipe an earlier exec of ours had open. */
  constructor(path: string, adopt?: { fd: number; readFd: number; writeFd: number }) {
    this.path = path;
    this.fd = adopt?.fd ?? LogFile.open(path);
    const [readEnd, writeEnd] = adopt ? [adopt.readFd, adopt.writeFd] : native.pipe();
    this.writeFd = writeEnd;
    this.readFd = readEnd;
    this.reader = new Socket({ fd: readEnd, readable: true, writable: false });
    this.reader.on('data', (chunk: Buffer) => this.copy(chunk));
    this.reader.on('error', () => this.reader.destroy());
    // only the pipe's writers keep us alive, never the reader itself
    this.reader.unref();
  }

  private static open(path: string): number {
    try {
      return openSync(path, 'a');
    } catch (e) {
      throw systemError(e, `failed to open log file:${path}: ${(e as Error).message}`);
    }
  }

  private copy(chunk: Buffer): void {
    if (this.dropped > 0) {
      if (!this.write(Buffer.from(droppedLine(this.dropped, this.why)))) {
        this.drop(chunk);
        return;
      }
      this.dropped = 0;
    }
    if (!this.write(chunk)) this.drop(chunk);
  }

  /** Writes all of `data`; false when the file refused it (what part of it went stays: a line cut short). */
  private write(data: Buffer): boolean {
    let rest = data;
    try {
      while (rest.length > 0) rest = rest.subarray(writeSync(this.fd, rest));
      return true;
    } catch (e) {
      this.why = (e as NodeJS.ErrnoException).code ?? 'EIO';
      return false;
    }
  }

  private drop(chunk: Buffer): void {
    let lines = 0;
    for (const byte of chunk) if (byte === 10) lines++;
    this.dropped += Math.max(1, lines);
  }

  /** At exit: what is still in the pipe (our own last lines) goes to the file now. */
  flush(): void {
    const buf = Buffer.alloc(65536);
    for (;;) {
      let n: number;
      try {
        n = readSync(this.readFd, buf);
      } catch {
        return;
      }
      if (n <= 0) return;
      this.copy(buf.subarray(0, n));
    }
  }

  /** After a rotation: the path again. A path that cannot be opened keeps the old file (and says why). */
  reopen(): string | undefined {
    let fd: number;
    try {
      fd = LogFile.open(this.path);
    } catch (e) {
      return (e as Error).message;
    }
    const old = this.fd;
    this.fd = fd;
    closeSync(old);
    return undefined;
  }
}
