// Where a server's listening socket comes from, in this order:
// 1. SERVER_STARTER_PORT (start_server / Server::Starter): every TCP or UNIX
//    stream entry; UDP entries are skipped with a warning;
// 2. systemd socket activation (LISTEN_FDS, for this pid);
// 3. its own bind (host/port or path).
// A Node server re-listens on an inherited fd with listen({fd}, backlog): the
// positional backlog keeps the shared socket's queue length (the object form
// resets it to 511 for every process sharing it).
// With reusePort, the sockets are this instance's own members of the port's
// SO_REUSEPORT group (one per CPU when steering, see net/reuseport/): small
// front net.Servers accept on them and hand each connection to `server`, and
// graceful() hands the port over before it stops accepting.
import { isIP, Server as NetServer, type Server } from 'node:net';
import { inheritedSockets, systemBacklog } from '../net/inherited.ts';
import { chooseHandover, type HandoverName, joinGroup, type ReuseportGroupMember, steerIn } from '../net/reuseport/index.ts';
import { sdNotify } from '../process/sd-notify.ts';

export { type InheritedSocket, inheritedSockets } from '../net/inherited.ts';

export interface ListenOptions {
  host?: string;
  port?: number;
  path?: string;
  backlog?: number;
  /** Join the port's SO_REUSEPORT group, with a zero-loss handover on shutdown. */
  reusePort?: boolean;
  /** How to hand the port over (reusePort only); default: migrate if the kernel does it, else steer. */
  handover?: 'auto' | HandoverName;
  /** reusePort with a mechanism that joins one instance at a time: the longest wait to join (default 30 s). */
  joinTimeoutMs?: number;
  /**
   * Once listening, tell the supervisor this process is ready (READY=1 to
   * NOTIFY_SOCKET, for start_server --ready-notify and systemd); default true.
   * An app with more to do first says false, and calls ready() itself.
   */
  notifyReady?: boolean;
}

export interface ReuseportBinding {
  group: ReuseportGroupMember;
  fronts: NetServer[];
}

const reuseport = new WeakMap<Server, ReuseportBinding>();

/** The reuse-port listeners listen() gave `server`, if any (used by graceful()). */
export function reuseportBinding(server: Server): ReuseportBinding | undefined {
  return reuseport.get(server);
}

async function listenReuseport(server: Server, host: string, port: number, backlog: number, o: ListenOptions): Promise<string> {
  if (!isIP(host)) throw new TypeError(`listen: reusePort needs a numeric host (got ${host})`);
  const handover = chooseHandover(o.handover ?? 'auto', false);
  const family = isIP(host) === 6 ? 6 : 4;
  const group = (await joinGroup({ host, port, family, backlog, handover, timeoutMs: o.joinTimeoutMs ?? 30_000 })) as ReuseportGroupMember;
  const fronts = await Promise.all(
    group.fds.map(
      (fd) =>
        new Promise<NetServer>((resolve, reject) => {
          const front = new NetServer((socket) => server.emit('connection', socket));
          front.once('error', reject);
          front.listen({ fd }, backlog, () => {
            front.off('error', reject);
            // graceful() shuts the listener down at handover and accept then
            // fails; close the handle, or libuv keeps retrying it in a loop.
            front.on('error', (err: NodeJS.ErrnoException) => {
              if (err.syscall === 'accept') front.close();
              else server.emit('error', err);
            });
            resolve(front);
          });
        }),
    ),
  );
  reuseport.set(server, { group, fronts });
  steerIn(group);
  return `${host}:${group.port} (SO_REUSEPORT, handover: ${group.handover})`;
}

/** Tells the supervisor (start_server --ready-notify, systemd) that this process serves: READY=1 to NOTIFY_SOCKET, if set. */
export function ready(): void {
  sdNotify('READY=1', (m) => process.emitWarning(m));
}

/**
 * Makes `server` listen on the inherited socket if there is one (the first),
 * else binds as told, then says it is ready (unless told not to). Resolves
 * to a description of what it listens on.
 */
export async function listen(server: Server, options: ListenOptions = {}): Promise<string> {
  const where = await listenOn(server, options);
  // Not ready yet, but say that we speak sd_notify: a supervisor that could
  // see us accept would otherwise take that as ready.
  if (options.notifyReady === false) sdNotify('STATUS=listening, not ready yet', (m) => process.emitWarning(m));
  else ready();
  return where;
}

async function listenOn(server: Server, options: ListenOptions): Promise<string> {
  const backlog = options.backlog ?? systemBacklog();
  const [inherited] = inheritedSockets();
  if (!inherited && options.reusePort && options.path === undefined) {
    return listenReuseport(server, options.host ?? '0.0.0.0', options.port ?? 0, backlog, options);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const ok = () => {
      server.off('error', reject);
      resolve();
    };
    if (inherited) server.listen({ fd: inherited.fd }, backlog, ok);
    else if (options.path !== undefined) server.listen({ path: options.path, backlog }, ok);
    else server.listen({ host: options.host ?? '0.0.0.0', port: options.port ?? 0, backlog }, ok);
  });
  if (inherited) return `${inherited.source} ${inherited.name} (fd ${inherited.fd})`;
  const addr = server.address();
  return typeof addr === 'string' ? addr : `${addr?.address}:${addr?.port}`;
}
