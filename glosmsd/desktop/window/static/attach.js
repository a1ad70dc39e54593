// The files attached to one message: what the daemon's `attach_check` kept, in the user's
// order, with a thumbnail URL for images. Which files are kept, their type and what each
// takes of the MMS budget are the daemon's verdict (the same rules `send` applies): this
// module never judges a size or a type itself. It reads each file's first bytes once
// (`attach_check` needs them) and the whole file only when sending (as a data: URI).

/** What `attach_check` reads of a file: 64 KiB and one byte more (see ipc/SPEC.md). */
export const HEAD_BYTES = 64 * 1024 + 1;
/** The SMS window's WebSocket frame (64 MiB); a send's params must stay under it. */
export const MAX_FRAME = 64 * 1024 * 1024;

function readAsDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error || new Error("The file could not be read."));
    reader.readAsDataURL(blob);
  });
}

function base64Of(dataUrl) {
  return dataUrl.slice(dataUrl.indexOf(",") + 1);
}

export class Attachments {
  constructor(rpc) {
    this.rpc = rpc;
    /** [{file, name, size, head, mime, budget, url}] in the user's order, all kept. */
    this.items = [];
    this.bytes = 0;
    this.queue = Promise.resolve();
  }

  get count() {
    return this.items.length;
  }

  /**
   * Offers FILES (a FileList or array of File) after the ones attached. Resolves with the
   * daemon's `message` (null when every file was kept), after the excess is discarded.
   * Calls run one after another, so quick drops and pastes keep the user's order.
   */
  add(files) {
    const run = this.queue.then(() => this._add(Array.from(files)));
    this.queue = run.catch(() => {});
    return run;
  }

  async _add(files) {
    if (!files.length) return null;
    const fresh = [];
    for (const file of files) {
      const head = base64Of(await readAsDataUrl(file.slice(0, HEAD_BYTES)));
      fresh.push({ file, name: file.name || "file", size: file.size, head, mime: null, budget: 0, url: null });
    }
    const offered = [...this.items, ...fresh];
    const verdict = await this.rpc.call("attach_check", {
      files: offered.map((f) => ({ name: f.name, size: f.size, head: f.head })),
    });
    const kept = [];
    verdict.files.forEach((v, i) => {
      const item = offered[i];
      item.mime = v.mime;
      item.budget = v.budget;
      if (v.kept) {
        if (!item.url && v.mime && v.mime.startsWith("image/")) item.url = URL.createObjectURL(item.file);
        kept.push(item);
      } else if (item.url) {
        URL.revokeObjectURL(item.url);
        item.url = null;
      }
    });
    this.items = kept;
    this.bytes = verdict.bytes;
    return verdict.message;
  }

  /** Removes the file at INDEX (after any attach still being judged). */
  remove(index) {
    const run = this.queue.then(() => {
      const [gone] = this.items.splice(index, 1);
      if (gone && gone.url) URL.revokeObjectURL(gone.url);
      // Each kept file's budget is the daemon's; the rest still fit as they did.
      this.bytes = this.items.reduce((sum, f) => sum + f.budget, 0);
    });
    this.queue = run.catch(() => {});
    return run;
  }

  /** The files as data: URIs carrying their names, for `send`'s `files`. */
  async dataUris() {
    const out = [];
    let total = 0;
    for (const item of this.items) {
      const url = await readAsDataUrl(item.file);
      const comma = url.indexOf(",");
      const uri = `data:${item.mime || "application/octet-stream"};name=${encodeURIComponent(item.name)};base64,${url.slice(comma + 1)}`;
      total += uri.length;
      if (total > MAX_FRAME - 1024 * 1024) {
        throw new Error(
          `These files are too big to send together (${Math.ceil(total / 1048576)} MB read so far): remove some and send them in another message.`,
        );
      }
      out.push(uri);
    }
    return out;
  }

  clear() {
    for (const item of this.items) if (item.url) URL.revokeObjectURL(item.url);
    this.items = [];
    this.bytes = 0;
  }
}
