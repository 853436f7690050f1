// One Node process serving HTTPS (PROTO=https) or HTTP/2 with TLS and
// HTTP/1.1 by ALPN (PROTO=h2) itself, on PORT, with TLS_CERT and TLS_KEY.
import { readFileSync } from 'node:fs';
import { createSecureServer } from 'node:http2';
import { createServer } from 'node:https';
import hello from './hello-listener.ts';

const tls = { cert: readFileSync(process.env.TLS_CERT as string), key: readFileSync(process.env.TLS_KEY as string) };
const server =
  process.env.PROTO === 'h2'
    ? createSecureServer({ ...tls, allowHTTP1: true }, hello as unknown as Parameters<typeof createSecureServer>[1])
    : createServer(tls, hello);
server.listen(Number(process.env.PORT), '127.0.0.1');
