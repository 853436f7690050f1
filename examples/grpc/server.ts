// A @grpc/grpc-js server hot-deployed by baton: inheritListen() hands the
// listen that bindAsync makes to the socket start_server (or `baton start`)
// passed down, says READY=1 once it listens, and on TERM drains it: every
// HTTP/2 session gets the two-phase GOAWAY, the calls under way finish, and
// the clients reconnect to the new generation by themselves.
//   baton start --port=50051 -- node examples/grpc/server.ts
//   baton deploy --pid-file=...        (or kill -HUP the supervisor)
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { inheritListen } from 'baton-deploy';

const definition = protoLoader.loadSync(join(import.meta.dirname, 'hello.proto'));
const hello = (grpc.loadPackageDefinition(definition) as unknown as { hello: { Greeter: grpc.ServiceClientConstructor } }).hello;
const generation = Number(process.env.SERVER_STARTER_GENERATION ?? 0);

const server = new grpc.Server();
server.addService(hello.Greeter.service, {
  SayHello: (call: grpc.ServerUnaryCall<{ name: string }, unknown>, reply: grpc.sendUnaryData<unknown>) =>
    reply(null, { message: `hello ${call.request.name}`, generation }),
  Count: (call: grpc.ServerWritableStream<{ name: string; count: number; every_ms: number }, unknown>) => {
    let n = 0;
    const next = () => {
      if (n === call.request.count) return call.end();
      call.write({ message: `${call.request.name} ${n++}`, generation });
      setTimeout(next, call.request.every_ms);
    };
    next();
  },
});

const inherited = inheritListen();
server.bindAsync(`0.0.0.0:${process.env.PORT ?? 50051}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
});
process.on('SIGTERM', async () => {
  await inherited.shutdown();
  process.exit(0);
});
