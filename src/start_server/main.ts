// The start_server command: parse, then act in upstream's order (help,
// version, restart, stop, start), and turn every failure into one line on
// stderr and a documented exit code.
import { closeSync, openSync, unlinkSync } from 'node:fs';
import { runCommand } from '../cli-kit/run.ts';
import type { Reply } from '../control/protocol.ts';
import { systemError } from '../errors.ts';
import { inheritedSockets, systemBacklog } from '../net/inherited.ts';
import { closeListeners, type Listener, openListeners } from '../net/listeners.ts';
import { native } from '../net/native.ts';
import { Inbox } from '../process/inbox.ts';
import { logLine as log, writeOut } from '../process/log.ts';
import { spawnProcess } from '../process/spawn.ts';
import { packageVersion } from '../version.ts';
import { ControlServer } from './control.ts';
import { loadEnvdir } from './envdir.ts';
import { LogFile } from './log-file.ts';
import { serveMetrics } from './metrics.ts';
import { parseArgs, type StartServerOptions } from './options.ts';
import { acquirePidFile, adoptPidFile } from './pid-file.ts';
import { HANDLED_SIGNALS, Supervisor, type SupervisorSnapshot, UPGRADE } from './supervisor.ts';
import { CHECK_ENV, checkNewProgram, execInPlace, STATE_ENV } from './upgrade.ts';
import { restartServer, stopServer } from './upstream-client.ts';

export const COMPAT_VERSION = '0.35';
const DAEMON_ENV = '__BATON_START_SERVER_DAEMON';

/** The environment the supervisor and its workers start from (upstream exports these). */
function startupEnv(o: StartServerOptions): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  delete env[DAEMON_ENV];
  if (o.envdir !== undefined) env.ENVDIR = o.envdir;
  if (o.enableAutoRestart !== undefined) env.ENABLE_AUTO_RESTART = '1';
  if (o.killOldDelay !== undefined) env.KILL_OLD_DELAY = String(o.killOldDelay);
  if (o.autoRestartInterval !== undefined) env.AUTO_RESTART_INTERVAL = String(o.autoRestartInterval);
  return { ...env, ...loadEnvdir(env.ENVDIR) };
}

/**
 * systemd socket activation (a .socket unit): with no --port or --path, the
 * sockets systemd passed us (LISTEN_FDS for our pid) are the ones every
 * generation inherits, at the same fds. The variables are ours, not theirs.
 */
function socketActivated(env: Record<string, string | undefined>): Listener[] {
  const sockets = inheritedSockets(env).filter((s) => s.source === 'systemd');
  for (const k of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) delete env[k];
  for (const s of sockets) log(`using the socket systemd passed as fd ${s.fd} (${s.name})`);
  // keyed as --port would key them: the address they are bound to
  return sockets.map((s) => {
    const a = native.localAddress(s.fd);
    const key = a.path ?? (a.address?.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
    return { key, fd: s.fd, childFd: s.fd };
  });
}

/** What an upgrade's exec hands the new program. */
interface UpgradeState {
  from: string;
  startedAt: number;
  upgrades: number;
  listeners: Listener[];
  pidFileFd: number | undefined;
  stdinDevNull: boolean;
  logFile: { fd: number; readFd: number; writeFd: number } | undefined;
  supervisor: SupervisorSnapshot;
}

/** The state an upgrade left us, taken out of the environment (the generations never see it). */
function takeUpgradeState(): UpgradeState | undefined {
  const raw = process.env[STATE_ENV];
  if (raw === undefined) return undefined;
  delete process.env[STATE_ENV];
  return JSON.parse(raw) as UpgradeState;
}

/** Opens --log-file: a file in append mode, or a pipe to "| command". */
function openLog(spec: string, env: Record<string, string | undefined>): number {
  const pipe = /^\s*\|\s*/s.exec(spec);
  if (pipe) {
    const [readEnd, writeEnd] = native.pipe();
    spawnProcess({ command: ['/bin/sh', '-c', spec.slice(pipe[0].length)], env, fds: [[readEnd, 0]] });
    native.closeFd(readEnd);
    return writeEnd;
  }
  try {
    return openSync(spec, 'a');
  } catch (e) {
    throw systemError(e, `failed to open log file:${spec}: ${(e as Error).message}`);
  }
}

/** Re-runs this command in a new session holding the sockets; the caller exits. */
function daemonize(listeners: readonly Listener[], env: Record<string, string | undefined>): void {
  const passed = listeners.map((l, i) => ({ key: l.key, fd: 3 + i, childFd: l.childFd, path: l.path }));
  spawnProcess({
    command: [process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    env: { ...env, [DAEMON_ENV]: JSON.stringify(passed) },
    fds: listeners.map((l, i): [number, number] => [l.fd, 3 + i]),
    setsid: true,
  });
}

async function start(o: StartServerOptions, inbox: Inbox): Promise<number> {
  // our lines and every generation's baton lines alike (process/log.ts)
  if (o.logFormat === 'json') process.env.BATON_LOG = 'json';
  else if (o.logTimestamps) process.env.BATON_LOG = 'timestamps';
  let logFile: LogFile | undefined;
  // an upgrade's exec: everything the old program held is ours now
  const upgraded = takeUpgradeState();
  const env = startupEnv(o);
  const inheritedRaw = process.env[DAEMON_ENV];
  let listeners: Listener[];
  if (upgraded) {
    listeners = upgraded.listeners;
    if (upgraded.logFile && o.logFile !== undefined) logFile = new LogFile(o.logFile, upgraded.logFile);
    log(
      `start_server (pid:${process.pid}) upgraded in place: ${upgraded.from} -> ${packageVersion()}; ${upgraded.supervisor.generations.live.length} generations kept`,
    );
  } else if (inheritedRaw !== undefined) {
    listeners = JSON.parse(inheritedRaw) as Listener[];
  } else {
    // a file the supervisor can reopen (logrotate), except for a daemon, whose parent leaves at once
    logFile = o.logFile !== undefined && !o.daemonize && !/^\s*\|/.test(o.logFile) ? new LogFile(o.logFile) : undefined;
    const logFd = logFile?.writeFd ?? (o.logFile === undefined ? undefined : openLog(o.logFile, env));
    log(`start_server (pid:${process.pid}) starting now...`);
    const activated = o.ports.length === 0 && o.paths.length === 0 ? socketActivated(env) : [];
    listeners = activated.length
      ? activated
      : await openListeners({ ports: o.ports, paths: o.paths, backlog: o.backlog || systemBacklog(), warn: log });
    if (logFd !== undefined) {
      native.dup2(logFd, 1);
      native.dup2(logFd, 2);
      closeSync(logFd);
    }
    if (o.daemonize) {
      daemonize(listeners, env);
      return 0;
    }
  }
  const pidFile =
    o.pidFile === undefined
      ? undefined
      : upgraded?.pidFileFd !== undefined
        ? adoptPidFile(o.pidFile, upgraded.pidFileFd)
        : acquirePidFile(o.pidFile, process.pid);
  const started = upgraded?.startedAt ?? Date.now();
  const upgrades = (upgraded?.upgrades ?? 0) + (upgraded ? 1 : 0);
  // the control server is a new one after the exec: its replies go here
  let upgradeWaiters: Array<(r: Reply) => void> = [];
  const supervisor: Supervisor = new Supervisor({
    options: o,
    listeners,
    inbox,
    baseEnv: env,
    stdinDevNull: inheritedRaw !== undefined || upgraded?.stdinDevNull === true,
    reopenLog: logFile && (() => logFile.reopen()),
    restore: upgraded?.supervisor,
    upgrade: async () => {
      const waiters = upgradeWaiters;
      upgradeWaiters = [];
      const tell = (r: Reply) => {
        for (const w of waiters) w(r);
      };
      const check = checkNewProgram();
      if (!check.ok) {
        tell({ error: check.why });
        return check.why;
      }
      tell({ upgrading: { from: packageVersion(), to: check.version } });
      control?.close();
      const state: UpgradeState = {
        from: packageVersion(),
        startedAt: started,
        upgrades,
        listeners,
        pidFileFd: pidFile?.fd,
        stdinDevNull: inheritedRaw !== undefined || upgraded?.stdinDevNull === true,
        logFile: logFile && { fd: logFile.fd, readFd: logFile.readFd, writeFd: logFile.writeFd },
        supervisor: supervisor.snapshot(),
      };
      const kept = [
        ...listeners.map((l) => l.fd),
        ...(pidFile ? [pidFile.fd] : []),
        ...(logFile ? [logFile.fd, logFile.readFd, logFile.writeFd] : []),
        ...supervisor.keptFds(),
      ];
      const why = execInPlace(kept, state);
      // still us: the exec did not happen; the control socket comes back
      if (o.control !== undefined) control = await openControl(o.control);
      return why;
    },
  });
  const openControl = (path: string) =>
    ControlServer.open(
      path,
      {
        deploy: (sink) => supervisor.requestDeploy(sink),
        status: () => ({
          supervisorPid: process.pid,
          version: packageVersion(),
          startedAt: started,
          upgrades,
          ...(upgraded ? { upgradedAt: Date.now() - process.uptime() * 1000 } : {}),
          ...supervisor.status(),
        }),
        upgrade: (reply) => {
          upgradeWaiters.push(reply);
          inbox.push(UPGRADE);
        },
      },
      log,
    );
  let control: ControlServer | undefined;
  try {
    if (o.metrics !== undefined) await serveMetrics(o.metrics, () => supervisor.metricsText());
    if (o.control !== undefined) control = await openControl(o.control);
    return await supervisor.run();
  } finally {
    logFile?.flush();
    control?.close();
    pidFile?.release();
    closeListeners(listeners);
    if (supervisor.statusWritten && o.statusFile !== undefined) {
      try {
        unlinkSync(o.statusFile);
      } catch {
        // already gone
      }
    }
  }
}

/** Runs start_server with `argv` (without node and script); resolves to the exit code. */
/** `modern`: baton start's defaults (options.ts BATON_START_OPTIONS) rather than upstream's. */
export async function main(argv: readonly string[], modern = false): Promise<number> {
  // Handlers first: a HUP or TERM during start-up is queued, not fatal.
  const inbox = new Inbox();
  inbox.listen(HANDLED_SIGNALS);
  try {
    // upstream's messages have no prefix
    return await runCommand('', async () => {
      const action = parseArgs(argv, modern);
      switch (action.kind) {
        case 'help':
          writeOut(action.text);
          return 0;
        case 'version':
          writeOut(`${COMPAT_VERSION}\n`);
          return 0;
        case 'restart':
          await restartServer(action.pidFile, action.statusFile);
          return 0;
        case 'stop':
          stopServer(action.pidFile);
          return 0;
        case 'start':
          // an upgrade's check of this program: it loads, takes these options, and says what it is
          if (process.env[CHECK_ENV]) {
            writeOut(`${packageVersion()}\n`);
            return 0;
          }
          return await start(action.options, inbox);
      }
    });
  } finally {
    inbox.close();
  }
}
