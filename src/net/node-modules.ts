// Node's http, https, http2 and tls modules, taken with require() rather
// than an ES import. An import of node:http builds its named exports, and Node 24's
// node:http has lazy getters (WebSocket, CloseEvent, MessageEvent) that this
// runs, loading Node's bundled undici: 73 ms of CPU against 8 ms for
// require(), measured here, in every process that imports it. Every deploy
// starts a master and its workers beside the generation that serves, so
// that CPU is taken from it. https, http2 and tls (27 ms as an import) are
// loaded only when TLS or HTTP/2 is served.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const http = require('node:http') as typeof import('node:http');

export function https(): typeof import('node:https') {
  return require('node:https') as typeof import('node:https');
}

export function http2(): typeof import('node:http2') {
  return require('node:http2') as typeof import('node:http2');
}

export function tls(): typeof import('node:tls') {
  return require('node:tls') as typeof import('node:tls');
}
