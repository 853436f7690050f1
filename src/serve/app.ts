// Turns whatever an app module exports into a Node request listener.
// Accepted (default export, or module.exports):
// - a request listener `(req, res)` (plain http, Express, Connect; Koa through
//   `app.callback()`, or a Koa app itself);
// - a fetch-style handler `(request) => Response`, or an object with
//   `fetch(request)` (Hono and friends);
// - a factory `() => one of the above` (sync or async), called once per worker.
// Beside it, two optional named exports (or module.exports properties):
// - `upgrade(req, socket, head)`: the server's 'upgrade' handler (WebSockets
//   with `ws`: wss.handleUpgrade);
// - `attach(server)`: called with each http.Server before it listens, for
//   libraries that attach themselves to a server (socket.io).
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { isAbsolute, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { BatonError } from '../errors.ts';
import { logLine } from '../process/log.ts';
import { appLoadError } from './app-error.ts';

type FetchHandler = (request: Request) => Response | Promise<Response>;

function toRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] as string;
    // HTTP/2's pseudo-headers (:method, :path...) are not headers of a Request
    if (name.charCodeAt(0) !== 58) headers.append(name, req.rawHeaders[i + 1] as string);
  }
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  const host = req.headers.host ?? (req.headers[':authority'] as string | undefined) ?? 'localhost';
  const scheme = (req.socket as { encrypted?: boolean } | undefined)?.encrypted ? 'https' : 'http';
  const url = `${scheme}://${host}${req.url ?? '/'}`;
  return new Request(url, {
    method,
    headers,
    body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined,
    // @ts-expect-error: Node's fetch needs duplex for streamed request bodies
    duplex: 'half',
  });
}

async function writeResponse(response: Response, res: ServerResponse): Promise<void> {
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  const cookies = response.headers.getSetCookie();
  for (const [name, value] of response.headers) if (name !== 'set-cookie') res.setHeader(name, value);
  if (cookies.length) res.setHeader('set-cookie', cookies);
  if (!response.body) {
    res.end();
    return;
  }
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
  }
  res.end();
}

export function fetchListener(handler: FetchHandler): RequestListener {
  return (req, res) => {
    Promise.resolve()
      .then(() => handler(toRequest(req)))
      .then((response) => writeResponse(response, res))
      .catch((err: unknown) => {
        logLine(`baton serve: the app's fetch handler failed on ${req.method} ${req.url}: ${(err as Error)?.stack ?? err}`);
        if (!res.headersSent) {
          res.statusCode = 500;
          res.setHeader('Content-Type', 'text/plain');
          res.end('Internal Server Error\n');
        } else {
          res.destroy();
        }
      });
  };
}

/** Resolves what a module exported into a request listener (see the top of this file). */
export async function toListener(exported: unknown, depth = 0): Promise<RequestListener> {
  if (depth > 3) throw new BatonError('ERR_BATON_APP', 'the app factory keeps returning factories');
  if (exported && typeof exported === 'object') {
    const o = exported as Record<string, unknown>;
    if (typeof o.fetch === 'function') return fetchListener((r) => (o.fetch as FetchHandler).call(o, r));
    if (typeof o.callback === 'function') return toListener((o.callback as () => unknown).call(o), depth + 1);
    if ('default' in o) return toListener(o.default, depth + 1);
  }
  if (typeof exported === 'function') {
    const fn = exported as (...args: unknown[]) => unknown;
    if (typeof (fn as { fetch?: unknown }).fetch === 'function')
      return toListener({ fetch: (fn as unknown as { fetch: FetchHandler }).fetch }, depth);
    if (fn.length >= 2) return fn as RequestListener;
    if (fn.length === 1) return fetchListener(fn as FetchHandler);
    return toListener(await fn(), depth + 1);
  }
  throw new BatonError(
    'ERR_BATON_APP',
    `it must export a request listener (req, res), a fetch handler (request) => Response, an object with fetch(), or a factory returning one, or call listen() itself (got ${exported === null ? 'null' : typeof exported})`,
  );
}

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface LoadedApp {
  listener: RequestListener;
  upgrade?: UpgradeHandler | undefined;
  attach?: ((server: Server) => unknown) | undefined;
}

/** A named export, or a property of a CommonJS module's exports. */
function hook<T>(mod: Record<string, unknown>, name: string): T | undefined {
  const cjs = mod['module.exports'] as Record<string, unknown> | undefined;
  const fn = mod[name] ?? (cjs && typeof cjs === 'object' ? cjs[name] : undefined);
  if (fn === undefined) return undefined;
  if (typeof fn !== 'function') throw new BatonError('ERR_BATON_APP', `its \`${name}\` export must be a function (got ${typeof fn})`);
  return fn as T;
}

/** Imports the app module (its top-level code runs: a script that listens does so now). */
export async function importApp(path: string): Promise<Record<string, unknown>> {
  const full = isAbsolute(path) ? path : resolve(path);
  try {
    return (await import(pathToFileURL(full).href)) as Record<string, unknown>;
  } catch (e) {
    throw appLoadError(e, full);
  }
}

/** What the module exports for serving: the default export, or a CommonJS module's exports. */
function exported(mod: Record<string, unknown>): unknown {
  return 'default' in mod ? mod.default : mod;
}

/** Whether the module exports nothing at all (a script that serves by listening itself). */
export function exportsNothing(mod: Record<string, unknown>): boolean {
  const e = exported(mod);
  return e === undefined || (typeof e === 'object' && e !== null && Object.keys(e).length === 0);
}

/** The request listener and hooks a module exports (see the top of this file). */
export async function servingExports(mod: Record<string, unknown>, path: string): Promise<LoadedApp> {
  try {
    return {
      listener: await toListener(exported(mod)),
      upgrade: hook<UpgradeHandler>(mod, 'upgrade'),
      attach: hook<(server: Server) => unknown>(mod, 'attach'),
    };
  } catch (e) {
    throw e instanceof BatonError ? new BatonError('ERR_BATON_APP', `cannot serve the app ${path}: ${e.message}`) : appLoadError(e, path);
  }
}
