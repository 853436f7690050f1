// Debian's nginx in front of a server, for tests and benches: one of the
// recipes in examples/nginx/ as it is (its upstream and listen address
// rewritten, and any further edit the caller makes), in a private prefix,
// in the foreground. Its access log records each response's status.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../src/net/free-port.ts';

export const NGINX = '/usr/sbin/nginx';
const EXAMPLES = join(import.meta.dirname, '..', 'examples', 'nginx');

export interface NginxOptions {
  /** examples/nginx/<site>.conf */
  site: 'tcp' | 'unix';
  /** host:port, or a socket path with the unix site. */
  upstream: string;
  /** A last edit of the site file (a variant of the recipe). */
  edit?: (conf: string) => string;
}

export interface Nginx {
  url: string;
  child: ChildProcess;
  /** Responses in the access log, by status. */
  statuses(): Record<string, number>;
  /** Responses with a status of 500 or more. */
  errors(): number;
  errorLog(): string;
  stop(): Promise<void>;
}

/** Starts nginx with its files in `dir`; resolves once it answers. */
export async function startNginx(dir: string, o: NginxOptions): Promise<Nginx> {
  const port = await freePort();
  const recipe = readFileSync(join(EXAMPLES, `${o.site}.conf`), 'utf8');
  const site = recipe
    .replace('server 127.0.0.1:8080;', `server ${o.upstream};`)
    .replace('server unix:/run/app/app.sock;', `server unix:${o.upstream};`)
    .replace('listen 80;', `listen 127.0.0.1:${port};`);
  if (!site.includes(`127.0.0.1:${port}`) || !site.includes(o.upstream))
    throw new Error(`examples/nginx/${o.site}.conf no longer has the lines to rewrite`);
  writeFileSync(join(dir, 'site.conf'), o.edit ? o.edit(site) : site);
  writeFileSync(
    join(dir, 'nginx.conf'),
    `user root;
worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  log_format statuses '$status $upstream_status';
  access_log ${dir}/access.log statuses;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/site.conf;
}
`,
  );
  const child = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const url = `http://127.0.0.1:${port}/`;
  const statuses = () => {
    const counts: Record<string, number> = {};
    for (const line of readFileSync(join(dir, 'access.log'), 'utf8').split('\n')) {
      const status = line.split(' ')[0];
      if (status) counts[status] = (counts[status] ?? 0) + 1;
    }
    return counts;
  };
  const nginx: Nginx = {
    url,
    child,
    statuses,
    errors: () => Object.entries(statuses()).reduce((n, [s, c]) => n + (Number(s) >= 500 ? c : 0), 0),
    errorLog: () => readFileSync(join(dir, 'error.log'), 'utf8'),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGQUIT');
      await exited;
    },
  };
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited with status ${child.exitCode}: ${stderr.trim()}`);
    if ((await fetch(url, { headers: { connection: 'close' } }).catch(() => undefined))?.ok) return nginx;
    await new Promise((r) => setTimeout(r, 100));
  }
  await nginx.stop();
  throw new Error(`nginx did not answer ${url} within 20 s: ${stderr.trim()}`);
}
