// The SMS window's entry point: connects to the daemon and mounts the page's parts.
import { Rpc } from "./rpc.js";

async function boot() {
  const rpc = await Rpc.connect();
  await rpc.call("hello", { protocol: 1, client: "glosms-window/1" });
  window.glosms = { rpc };
}

boot();
