// CPU time from /proc, in seconds: of a live process tree (the root and every
// descendant, with the children each has reaped), or of a command run to
// completion.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const TICKS = 100;

/**
 * A process's CPU: its own plus that of its children it has reaped (which is
 * where an exited process's CPU goes), so sums over a tree stay right while
 * processes in it come and go.
 */
function stat(pid: number): { ppid: number; cpu: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS };
  } catch {
    return undefined;
  }
}

/** pid -> cpu seconds for the tree rooted at `root`. */
export function treeCpu(root: number): Map<number, number> {
  const all = new Map<number, { ppid: number; cpu: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (s) all.set(Number(name), s);
  }
  const out = new Map<number, number>();
  const walk = (pid: number) => {
    const s = all.get(pid);
    if (!s) return;
    out.set(pid, s.cpu);
    for (const [child, cs] of all) if (cs.ppid === pid) walk(child);
  };
  walk(root);
  return out;
}

/** CPU seconds the tree used between two snapshots of it (a process that exited in between is in its parent's share). */
export function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  const sum = (m: Map<number, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  return sum(after) - sum(before);
}

/**
 * Runs a command to completion; resolves to its output and the CPU seconds
 * it and its children used (the shell's cutime + cstime once it has waited
 * for them).
 */
export function runMeasured(command: string, args: readonly string[]): Promise<{ stdout: string; stderr: string; cpuSeconds: number }> {
  const script = '"$@"; echo "BENCH_STAT $(cat /proc/$$/stat)" >&2';
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script, 'sh', command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', () => {
      // fields after "(comm) ": state is [0], cutime [13], cstime [14]
      const stat = /BENCH_STAT (.*)/.exec(stderr)?.[1] ?? '';
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      resolve({ stdout, stderr, cpuSeconds: (Number(f[13]) + Number(f[14])) / TICKS });
    });
  });
}

/** The live children of `ppid` with their state letter ('Z' for a zombie), from /proc. */
export function childProcesses(ppid: number): Array<{ pid: number; state: string }> {
  const out: Array<{ pid: number; state: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === ppid) out.push({ pid: Number(name), state: f[0] as string });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}
