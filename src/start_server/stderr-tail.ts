// A generation's stderr, passed through to ours line by line as it comes,
// keeping the last lines written while the generation starts: when a start
// fails, `baton deploy` shows them next to the exit status.
import { Socket } from 'node:net';
import { native } from '../net/native.ts';
import { writeErr } from '../process/log.ts';

export class StderrTail {
  private readonly keep: number;
  private readonly lines: string[] = [];
  private partial = '';
  private keeping = true;
  /** The pipe's write end, for the child's fd 2 (closed here once it is spawned). */
  readonly childFd: number;

  /** The pipe's read end (kept open across an upgrade's exec). */
  readonly readFd: number;

  /** `adopt`: the read end of a tail an earlier exec of ours had, already spawned. */
  constructor(keep: number, adopt?: number) {
    this.keep = keep;
    const [readEnd, writeEnd] = adopt === undefined ? native.pipe() : [adopt, -1];
    this.childFd = writeEnd;
    this.readFd = readEnd;
    if (adopt !== undefined) this.keeping = false;
    const reader = new Socket({ fd: readEnd, readable: true, writable: false });
    reader.on('data', (chunk: Buffer) => {
      writeErr(chunk.toString('utf8'));
      if (this.keeping) this.collect(chunk.toString('utf8'));
    });
    reader.on('error', () => reader.destroy());
  }

  /** The child has its copy: ours goes, so the pipe ends when the child's does. */
  spawned(): void {
    native.closeFd(this.childFd);
  }

  /** Started: its later lines are passed through, no longer kept. */
  stopKeeping(): void {
    this.keeping = false;
    this.lines.length = 0;
  }

  tail(): string[] {
    return this.partial ? [...this.lines, this.partial].slice(-this.keep) : [...this.lines];
  }

  private collect(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() as string;
    this.lines.push(...parts);
    if (this.lines.length > this.keep) this.lines.splice(0, this.lines.length - this.keep);
  }
}
