// JSON-RPC 2.0 over the daemon's /rpc WebSocket (see ../README.md and ipc/SPEC.md).
// It owns the one socket of the page: calls matched to replies by id (the daemon runs up
// to 8 of a page's calls at once, so replies come in any order), notifications handed to
// whoever registered for their method. It never retries on its own: after a daemon
// restart the cookie is spent, so the page says so instead (onclose).

export class RpcError extends Error {
  constructor(error) {
    super(error && error.message ? error.message : "Unknown error");
    this.name = "RpcError";
    this.code = error ? error.code : undefined;
    this.data = error ? error.data : undefined;
  }
}

export class Rpc {
  /** Opens ws://HOST/rpc on the page's own origin; resolves once it is open. */
  static connect(url = `ws://${location.host}/rpc`) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const failed = () => reject(new Error("The SMS window could not reach glosmsd."));
      ws.addEventListener("error", failed, { once: true });
      ws.addEventListener(
        "open",
        () => {
          ws.removeEventListener("error", failed);
          resolve(new Rpc(ws));
        },
        { once: true },
      );
    });
  }

  constructor(ws) {
    this.ws = ws;
    this.nextId = 1;
    this.pending = new Map();
    this.handlers = new Map();
    this.closeHandlers = [];
    this.closed = false;
    ws.addEventListener("message", (ev) => this._receive(ev.data));
    ws.addEventListener("close", (ev) => this._closed(ev));
  }

  /** Calls METHOD; resolves with its result, rejects with an RpcError (.code, .data). */
  call(method, params = {}) {
    if (this.closed) {
      return Promise.reject(new RpcError({ code: -32000, message: "The connection to glosmsd is closed." }));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }

  /** Registers HANDLER(params) for the notification METHOD ('event', 'window.show', 'progress'). */
  on(method, handler) {
    if (!this.handlers.has(method)) this.handlers.set(method, []);
    this.handlers.get(method).push(handler);
    return () => {
      const list = this.handlers.get(method) || [];
      const at = list.indexOf(handler);
      if (at >= 0) list.splice(at, 1);
    };
  }

  /** Registers HANDLER(closeEvent) for when the socket closes. */
  onclose(handler) {
    this.closeHandlers.push(handler);
  }

  close() {
    this.ws.close();
  }

  _receive(text) {
    let value;
    try {
      value = JSON.parse(text);
    } catch {
      return;
    }
    for (const one of Array.isArray(value) ? value : [value]) this._dispatch(one);
  }

  _dispatch(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.method !== undefined && msg.id === undefined) {
      for (const handler of this.handlers.get(msg.method) || []) {
        try {
          handler(msg.params);
        } catch (err) {
          console.error(err);
        }
      }
      return;
    }
    const waiter = this.pending.get(msg.id);
    if (!waiter) return;
    this.pending.delete(msg.id);
    if (msg.error) waiter.reject(new RpcError(msg.error));
    else waiter.resolve(msg.result);
  }

  _closed(ev) {
    this.closed = true;
    const gone = new RpcError({ code: -32000, message: "The connection to glosmsd is closed." });
    for (const waiter of this.pending.values()) waiter.reject(gone);
    this.pending.clear();
    for (const handler of this.closeHandlers) {
      try {
        handler(ev);
      } catch (err) {
        console.error(err);
      }
    }
  }
}
