// Preload (`node --require`) that keeps a server on loopback: the reference server listens
// on every interface and has no host option; tests must bind 127.0.0.1 only.
const net = require("node:net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))) {
    const port = Number(args[0]);
    const rest = args.slice(1).filter((a) => typeof a === "function" || typeof a === "number");
    const callback = rest.find((a) => typeof a === "function");
    return listen.call(this, { port, host: "127.0.0.1" }, callback);
  }
  if (args[0] && typeof args[0] === "object" && !("path" in args[0])) {
    args[0] = { ...args[0], host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};
