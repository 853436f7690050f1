// CPU time of a process tree from /proc: utime + stime of every live
// descendant (and the root), in seconds.
import { readdirSync, readFileSync } from 'node:fs';

const TICKS = 100;

function stat(pid: number): { ppid: number; cpu: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / TICKS };
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

/** CPU seconds the tree used between two snapshots (processes present in both or born since). */
export function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, cpu] of after) total += cpu - (before.get(pid) ?? 0);
  return total;
}
