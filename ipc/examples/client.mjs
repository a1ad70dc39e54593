#!/usr/bin/env node
// A glosmsd client for Node, no dependencies: `node client.mjs METHOD [JSON-PARAMS]`.
import net from "node:net";
import os from "node:os";

const runtime = process.env.XDG_RUNTIME_DIR || `/tmp/glosmsd-${os.userInfo().uid}`;
const path = process.env.GLOSMSD_SOCKET || `${runtime}/glosmsd/socket`;
const [method = "status", params = "{}"] = process.argv.slice(2);

const sock = net.createConnection(path, () => {
  sock.write(JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: JSON.parse(params) }) + "\n");
});
let buf = "";
sock.on("data", (chunk) => {
  buf += chunk;
  const nl = buf.indexOf("\n");
  if (nl < 0) return;
  const reply = JSON.parse(buf.slice(0, nl));
  sock.end();
  if (reply.error) {
    console.error(`error ${reply.error.code}: ${reply.error.message}`);
    process.exitCode = 1;
  } else {
    console.log(JSON.stringify(reply.result, null, 2));
  }
});
sock.on("error", (err) => {
  console.error(`glosmsd is not running at ${path} (${err.code}); start it with: glosmsd &`);
  process.exitCode = 3;
});
