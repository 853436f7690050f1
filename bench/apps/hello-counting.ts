// One Node process binding PORT itself that counts the requests it answers,
// so a bench can compare load generators by what the server really served
// (autocannon counts each request twice without keep-alive). Asked over IPC.
import { createServer } from 'node:http';
import hello from './hello-listener.ts';

let served = 0;
createServer((req, res) => {
  served++;
  hello(req, res);
}).listen(Number(process.env.PORT), '127.0.0.1');
process.on('message', () => process.send?.(served));
