// An HTTP/2 load the way a well-behaved client makes it: `sessions` long-lived
// sessions, each sending one request after another; a session told GOAWAY is
// replaced by a new one, and a stream the server refused (REFUSED_STREAM, or
// a GOAWAY that came first: the server never saw it) is sent again on the new
// session, as RFC 9113 allows. Anything else is a failure: a stream reset, a
// connection error, an answer that is not 200, a response not within 10 s.
import { type ClientHttp2Session, connect, constants } from 'node:http2';

export interface H2LoadResult {
  requests: number;
  failures: number;
  /** Streams the server refused, sent again. */
  retried: number;
  goaways: number;
  sessionsOpened: number;
  detail: string[];
}

const RETRYABLE = new Set(['ERR_HTTP2_GOAWAY_SESSION', 'ERR_HTTP2_INVALID_SESSION', 'ERR_HTTP2_STREAM_CANCEL']);

export function h2Load(origin: string, sessions: number): { stop(): Promise<H2LoadResult> } {
  const r: H2LoadResult = { requests: 0, failures: 0, retried: 0, goaways: 0, sessionsOpened: 0, detail: [] };
  let stopping = false;
  const open = (): ClientHttp2Session => {
    r.sessionsOpened++;
    const s = connect(origin, { rejectUnauthorized: false });
    s.on('error', () => {});
    s.once('goaway', () => r.goaways++);
    return s;
  };
  const once = (s: ClientHttp2Session, path: string): Promise<'ok' | 'retry' | string> =>
    new Promise((resolve) => {
      let req: ReturnType<ClientHttp2Session['request']>;
      try {
        req = s.request({ ':path': path });
      } catch (e) {
        return resolve(RETRYABLE.has((e as { code?: string }).code ?? '') ? 'retry' : String(e));
      }
      let status = 0;
      const timer = setTimeout(() => {
        req.close();
        resolve('timeout');
      }, 10_000);
      req.on('response', (h) => {
        status = Number(h[':status']);
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        // refused (REFUSED_STREAM, by the server or by Node's client for a stream it had not sent when the GOAWAY came): never processed
        resolve(RETRYABLE.has(e.code ?? '') || /REFUSED_STREAM/.test(e.message) ? 'retry' : `${e.code} ${e.message}`);
      });
      req.on('close', () => {
        clearTimeout(timer);
        if (req.rstCode === constants.NGHTTP2_REFUSED_STREAM) resolve('retry');
        else if (req.rstCode !== constants.NGHTTP2_NO_ERROR) resolve(`stream reset ${req.rstCode}`);
        else resolve(status === 200 ? 'ok' : `status ${status}`);
      });
      req.resume();
      req.end();
    });
  const loops = Array.from({ length: sessions }, async (_, i) => {
    let s = open();
    while (!stopping) {
      if (s.closed || s.destroyed) s = open();
      let outcome = await once(s, `/${i}`);
      for (let n = 0; outcome === 'retry' && n < 3; n++) {
        r.retried++;
        if (!s.closed) s.close();
        s = open();
        outcome = await once(s, `/${i}`);
      }
      r.requests++;
      if (outcome !== 'ok') {
        r.failures++;
        if (r.detail.length < 20) r.detail.push(outcome);
      }
    }
    s.close();
  });
  return {
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
      return r;
    },
  };
}
