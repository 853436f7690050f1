// Rendered on the server for every request, like most real pages.
export const dynamic = 'force-dynamic';

export default function Page() {
  return (
    <main>
      <h1>hello from generation {process.env.SERVER_STARTER_GENERATION ?? '0'}</h1>
      <p>
        rendered at {new Date().toISOString()} by pid {process.pid}
      </p>
    </main>
  );
}
