// Preloaded (node --import) into the conformance test's stdio-to-HTTP bridge (supergateway),
// which would listen on every interface at a port chosen beforehand: its server binds
// 127.0.0.1 on a port the kernel picks instead (no race for a free port, nothing reachable
// from another machine), and that port is printed for the test to read.
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  this.once('listening', () => {
    process.stderr.write(`memlane-bridge-port ${this.address().port}\n`);
  });
  const callbacks = args.filter((arg) => typeof arg === 'function');
  return listen.call(this, { port: 0, host: '127.0.0.1' }, ...callbacks);
};
