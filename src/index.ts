// baton's library API.

export { draining } from './lib/draining.ts';
export { type DrainableServer, type Graceful, type GracefulOptions, graceful } from './lib/graceful/index.ts';
export { type Inherited, type InheritOptions, inheritListen } from './lib/inherit.ts';
export { type InheritedSocket, inheritedSockets, type ListenOptions, listen, ready } from './lib/listen.ts';
export { formatServerStarterPort, type PortEntry, parseServerStarterPort } from './net/server-starter-port.ts';
