// baton's library API.

export { formatServerStarterPort, type PortEntry, parseServerStarterPort } from './net/server-starter-port.ts';
export { draining } from './serve/draining.ts';
export { type Graceful, type GracefulOptions, graceful } from './serve/graceful.ts';
export { type InheritedSocket, inheritedSockets, type ListenOptions, listen, ready } from './serve/listen.ts';
