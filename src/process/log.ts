// The log lines of baton's own processes, on stderr (stdout belongs to the
// app or the children). A log destination that fails (a full disk,
// /dev/full, a log pipe whose reader died) must never cost a request or a
// deploy: a line that cannot be written is dropped and counted, never
// thrown, and the first line written once it works again is preceded by one
// saying how many were lost and why.
//
// Lines are written whole and synchronously to fd 2, so they keep their
// order with the children's output and survive a dup2 of fd 2 onto
// --log-file.
//
// BATON_LOG (set by `baton start --log-timestamps`/`--log-format=json` for
// itself and handed to its generations, so every baton process logs alike)
// adds the time (`timestamps`), or makes each line one JSON object for a log
// shipper (`json`: time, pid, the generation, msg). The app's own output is
// never touched.
import { writeSync } from 'node:fs';

type Format = 'text' | 'timestamps' | 'json';

function format(): Format {
  const f = process.env.BATON_LOG;
  return f === 'json' || f === 'timestamps' ? f : 'text';
}

/** One line as BATON_LOG wants it. */
export function formatLine(line: string, f: Format = format(), now = new Date()): string {
  if (f === 'text') return line;
  if (f === 'timestamps') return `${now.toISOString()} ${line}`;
  const generation = Number(process.env.SERVER_STARTER_GENERATION);
  return JSON.stringify({
    time: now.toISOString(),
    pid: process.pid,
    ...(Number.isInteger(generation) && generation > 0 ? { generation } : {}),
    msg: line,
  });
}

/** A pipe someone else made non-blocking may be full for a moment: wait this long for it. */
const PIPE_WAIT_MS = 100;
const pause = new Int32Array(new SharedArrayBuffer(4));

let dropped = 0;
let why = '';

function write(fd: number, text: string): boolean {
  let buf = Buffer.from(text);
  let waited = 0;
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(fd, buf));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      if (code === 'EAGAIN' && waited < PIPE_WAIT_MS) {
        Atomics.wait(pause, 0, 0, 5);
        waited += 5;
        continue;
      }
      why = code;
      return false;
    }
  }
  return true;
}

/** The line that says what a failing destination cost, once it takes lines again. */
export function droppedLine(lines: number, reason: string): string {
  return `${formatLine(`(${lines} earlier log line${lines > 1 ? 's' : ''} dropped: ${reason})`)}\n`;
}

/** Writes one line to stderr, or counts it as dropped. Never throws. */
export function logLine(line: string): void {
  if (dropped > 0) {
    if (!write(2, droppedLine(dropped, why))) {
      dropped++;
      return;
    }
    dropped = 0;
  }
  if (!write(2, `${formatLine(line)}\n`)) dropped++;
}

/** A logger whose lines start with `prefix`. */
export function logger(prefix: string): (line: string) => void {
  return (line) => logLine(`${prefix}${line}`);
}

/** Output a command was asked for (help, a report) on stdout; a closed pipe (`| head`) is not an error. */
export function writeOut(text: string): void {
  write(1, text);
}

/** Text on stderr as it is (a progress line); dropped, never thrown, when stderr fails. */
export function writeErr(text: string): void {
  write(2, text);
}
