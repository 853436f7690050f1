// One app, shut down on TERM the way each of Node's graceful-shutdown
// libraries documents it (SHUTDOWN_WITH picks one), on the socket start_server
// passes down; bench/drill deploys each under the same load.
//   http-terminator  createHttpTerminator({ server }).terminate(), then exit
//   stoppable        stoppable(server).stop(), then exit
//   terminus         createTerminus(server, { signals: ['SIGTERM'] })
//   lightship        createLightship(), a shutdown handler that closes the server
//   graceful         baton's graceful(server).shutdown(), then exit
//   close            plain server.close(), then exit (what most apps do)

import { createServer } from 'node:http';
import { createTerminus } from '@godaddy/terminus';
import { graceful, listen } from 'baton-deploy';
import { createHttpTerminator } from 'http-terminator';
import { createLightship } from 'lightship';
import stoppable from 'stoppable';
import hello from './hello-listener.ts';

const server = createServer(hello);
const exit = () => process.exit(0);
switch (process.env.SHUTDOWN_WITH) {
  case 'http-terminator': {
    const terminator = createHttpTerminator({ server });
    process.on('SIGTERM', () => void terminator.terminate().then(exit));
    break;
  }
  case 'stoppable': {
    const s = stoppable(server);
    process.on('SIGTERM', () => s.stop(exit));
    break;
  }
  case 'terminus':
    createTerminus(server, { signals: ['SIGTERM'] });
    break;
  case 'lightship': {
    const lightship = await createLightship();
    lightship.registerShutdownHandler(() => new Promise<void>((resolve) => server.close(() => resolve())));
    server.once('listening', () => lightship.signalReady());
    break;
  }
  case 'graceful': {
    const drain = graceful(server);
    process.on('SIGTERM', () => void drain.shutdown().then(exit));
    break;
  }
  case 'close':
    process.on('SIGTERM', () => server.close(exit));
    break;
  default:
    throw new Error(`SHUTDOWN_WITH=${process.env.SHUTDOWN_WITH}: not one of the libraries this bench knows`);
}
await listen(server);
