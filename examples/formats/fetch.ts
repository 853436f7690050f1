// A bare fetch handler: (request) => Response.
export default async function handler(request: Request): Promise<Response> {
  const url = new URL(request.url);
  return new Response(`fetch ${url.pathname}\n`, { headers: { 'content-type': 'text/plain', 'set-cookie': 'a=1' } });
}
