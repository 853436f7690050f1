// The app bench/chaos deploys. BATON_CHAOS (from start_server's envdir,
// reloaded on every HUP) makes a generation misbehave:
//   never-ready  workers never finish loading (so never listen)
//   exit0        workers exit 0 while loading
//   ignore-term  workers never exit once stopped (a stuck app): only a KILL ends them
import hello from './hello-listener.ts';

const mode = process.env.BATON_CHAOS;
if (mode === 'exit0') process.exit(0);
if (mode === 'ignore-term') {
  process.exit = (() => undefined) as typeof process.exit;
  setInterval(() => {}, 60_000);
}
if (mode === 'never-ready') await new Promise(() => setInterval(() => {}, 60_000));
export default hello;
