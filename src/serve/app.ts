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

type FetchHandler = (request: Request) => Response | Promise<Response>;

function toRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string);
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  const url = `http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`;
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
    `the app module must export a request listener (req, res), a fetch handler (request) => Response, an object with fetch(), or a factory returning one (got ${exported === null ? 'null' : typeof exported})`,
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
  if (typeof fn !== 'function')
    throw new BatonError('ERR_BATON_APP', `the app module's \`${name}\` export must be a function (got ${typeof fn})`);
  return fn as T;
}

export async function loadApp(path: string): Promise<LoadedApp> {
  const full = isAbsolute(path) ? path : resolve(path);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(full).href)) as Record<string, unknown>;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' && err.message.includes(full))
      throw new BatonError('ERR_BATON_APP', `app module not found: ${full}`);
    throw e;
  }
  return {
    listener: await toListener('default' in mod ? mod.default : mod),
    upgrade: hook<UpgradeHandler>(mod, 'upgrade'),
    attach: hook<(server: Server) => unknown>(mod, 'attach'),
  };
}
