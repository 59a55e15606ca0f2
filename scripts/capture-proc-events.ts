/**
 * Captures real proc connector datagrams from this kernel into
 * test/fixtures/proc-events.json, so the parser is tested on the kernel's own
 * bytes. Run as root (or on Linux 6.6+ as any user) in the initial namespaces:
 *   bun scripts/capture-proc-events.ts
 * No socket filter: the raw stream, as an old kernel would send it.
 */
import { writeFileSync } from "node:fs";
import { release } from "node:os";
import { loadLibc } from "../src/runtime/index.ts";
import { NLMSG_LEN } from "../src/netlink/constants.ts";
import { narrowToForkAndExit, openProcConnectorSocket, sendIgnore, sendListen } from "../src/netlink/socket.ts";
import { parseProcEvents, type ProcEvent } from "../src/netlink/structs.ts";

const NONCE = 0x5eed;
const libc = loadLibc();
const fd = openProcConnectorSocket(libc);
const chunks: Uint8Array[] = [];
const reader = Bun.file(fd).stream().getReader();
void (async () => {
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    chunks.push(value.slice());
  }
})();

sendListen(libc, fd, NONCE);
await Bun.sleep(20);
narrowToForkAndExit(libc, fd);
const exit3 = Bun.spawn(["sh", "-c", "exit 3"]);
await exit3.exited;
const killed = Bun.spawn(["sleep", "10"]);
await Bun.sleep(20);
killed.kill("SIGKILL");
await killed.exited;
await Bun.sleep(50);
sendIgnore(libc, fd);
await reader.cancel();
libc.close(fd);

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const datagrams = chunks.flatMap(splitDatagrams);
const find = (what: string, test: (event: ProcEvent) => boolean) => {
  const found = datagrams.find((bytes) => parseProcEvents(bytes).events.some(test));
  if (!found) throw new Error(`no ${what} captured`);
  return hex(found);
};
const fixture = {
  capturedOn: `${process.platform} ${release()} ${process.arch}`,
  nonce: NONCE,
  ack: find("ack", (e) => e.type === "ack" && e.ack === NONCE + 1),
  forkOfExit3: { pid: exit3.pid, hex: find("fork", (e) => e.type === "fork" && e.childPid === exit3.pid) },
  exit3: { pid: exit3.pid, parent: process.pid, hex: find("exit 3", (e) => e.type === "exit" && e.pid === exit3.pid) },
  sigkill: { pid: killed.pid, hex: find("SIGKILL exit", (e) => e.type === "exit" && e.pid === killed.pid) },
  // A chunk as Bun.file(fd).stream() delivered it: several datagrams at once.
  multiDatagramChunk: hex(chunks.reduce((a, b) => (b.byteLength > a.byteLength ? b : a))),
};
writeFileSync(new URL("../test/fixtures/proc-events.json", import.meta.url), `${JSON.stringify(fixture, null, 2)}\n`);
console.log("wrote test/fixtures/proc-events.json; largest chunk", fixture.multiDatagramChunk.length / 2, "bytes");

/** A chunk from the stream may hold several datagrams back to back. */
function splitDatagrams(chunk: Uint8Array): Uint8Array[] {
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const out: Uint8Array[] = [];
  for (let at = 0; at + 4 <= chunk.byteLength; ) {
    const length = view.getUint32(at + NLMSG_LEN, true);
    if (length < 16 || at + length > chunk.byteLength) break;
    out.push(chunk.slice(at, at + length));
    at += length;
  }
  return out;
}
