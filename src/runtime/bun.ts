/**
 * The libc binding on Bun, through bun:ffi: the only module that imports it.
 * errno is read through __errno_location, never the `errno` symbol (a known
 * Bun segfault). Arguments are plain integers and buffers; no JSCallback
 * (threadsafe callbacks have a crash history in Bun).
 */
import { dlopen, FFIType, ptr as addressOf, read, type Pointer } from "bun:ffi";
import { libcFromCalls, SOCK_FILTER_SIZE, SOCK_FPROG_FILTER, SOCK_FPROG_SIZE, type Libc } from "../libc.ts";
import { SO_ATTACH_FILTER, SOL_SOCKET } from "../netlink/constants.ts";

// i64_fast: a result that fits in a double comes back as a number, not a BigInt allocated per call.
const { i32, u32, i64, i64_fast, u64, ptr } = FFIType;

const symbols = {
  __errno_location: { args: [], returns: ptr },
  getpid: { args: [], returns: i32 },
  close: { args: [i32], returns: i32 },
  prctl: { args: [i32, u64, u64, u64, u64], returns: i32 },
  syscall: { args: [i64, i64, i64], returns: i64_fast },
  ioctl: { args: [i32, u64, ptr], returns: i32 },
  waitid: { args: [i32, u32, ptr, i32], returns: i32 },
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, ptr, u32], returns: i32 },
  connect: { args: [i32, ptr, u32], returns: i32 },
  send: { args: [i32, ptr, u64, i32], returns: i64_fast },
  recvfrom: { args: [i32, ptr, u64, i32, ptr, ptr], returns: i64_fast },
  pread: { args: [i32, ptr, u64, i64], returns: i64_fast },
  setsockopt: { args: [i32, i32, i32, ptr, u32], returns: i32 },
  getsockopt: { args: [i32, i32, i32, ptr, ptr], returns: i32 },
  clock_gettime: { args: [i32, ptr], returns: i32 },
  poll: { args: [ptr, u64, i32], returns: i32 },
  // process control for `orphan-reaper run`
  setpgid: { args: [i32, i32], returns: i32 },
  getpgrp: { args: [], returns: i32 },
  tcsetpgrp: { args: [i32, i32], returns: i32 },
  tcgetpgrp: { args: [i32], returns: i32 },
  isatty: { args: [i32], returns: i32 },
  fcntl: { args: [i32, i32, i32], returns: i32 },
  signal: { args: [i32, u64], returns: i64 },
  sigaction: { args: [i32, ptr, ptr], returns: i32 },
  sigprocmask: { args: [i32, ptr, ptr], returns: i32 },
  pipe2: { args: [ptr, i32], returns: i32 },
  read: { args: [i32, ptr, u64], returns: i64_fast },
  mmap: { args: [ptr, u64, i32, i32, i32, i64], returns: i64 },
  mprotect: { args: [u64, u64, i32], returns: i32 },
  memcpy: { args: [u64, ptr, u64], returns: u64 },
  __libc_current_sigrtmin: { args: [], returns: i32 },
  __libc_current_sigrtmax: { args: [], returns: i32 },
  execvp: { args: [ptr, ptr], returns: i32 },
} as const;

/** A NUL-terminated C string. */
function cString(text: string): Buffer {
  return Buffer.from(`${text}\0`, "utf8");
}

export function bindLibc(path: string): Libc {
  const lib = dlopen(path, symbols).symbols;
  const errnoPointer = lib.__errno_location() as Pointer;
  return libcFromCalls({
    path,
    errno: () => read.i32(errnoPointer, 0),
    getpid: () => lib.getpid(),
    close: (fd) => lib.close(fd),
    prctl: (option, value) => lib.prctl(option, value, 0, 0, 0),
    prctlGetInt: (option, into) => lib.prctl(option, addressOf(into), 0, 0, 0),
    syscall: (number, arg1, arg2) => Number(lib.syscall(number, arg1, arg2)),
    ioctl: (fd, request, argument) => lib.ioctl(fd, request, argument),
    waitid: (idType, id, siginfo, options) => lib.waitid(idType, id, siginfo, options),
    socket: (domain, type, protocol) => lib.socket(domain, type, protocol),
    bind: (fd, address, length) => lib.bind(fd, address, length),
    connect: (fd, address, length) => lib.connect(fd, address, length),
    send: (fd, data, length, flags) => Number(lib.send(fd, data, length, flags)),
    pread: (fd, into, length, offset) => Number(lib.pread(fd, into, length, offset)),
    recvfrom: (fd, into, length, flags, address, addressLength) =>
      Number(lib.recvfrom(fd, into, length, flags, address, addressLength)),
    setsockopt: (fd, level, name, value, length) => lib.setsockopt(fd, level, name, value, length),
    getsockopt: (fd, level, name, value, length) => lib.getsockopt(fd, level, name, value, length),
    attachFilter(fd, program) {
      const fprog = new Uint8Array(SOCK_FPROG_SIZE);
      const view = new DataView(fprog.buffer);
      view.setUint16(0, program.byteLength / SOCK_FILTER_SIZE, true);
      // A real address: the kernel copies the program during this call, while
      // `program` is still referenced here, so it cannot move or be freed.
      view.setBigUint64(SOCK_FPROG_FILTER, BigInt(addressOf(program)), true);
      return lib.setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog, SOCK_FPROG_SIZE);
    },
    clockGettime: (clock, timespec) => lib.clock_gettime(clock, timespec),
    poll: (pollfds, count, timeoutMs) => lib.poll(pollfds, count, timeoutMs),
    setpgid: (pid, pgid) => lib.setpgid(pid, pgid),
    getpgrp: () => lib.getpgrp(),
    tcsetpgrp: (fd, pgrp) => lib.tcsetpgrp(fd, pgrp),
    tcgetpgrp: (fd) => lib.tcgetpgrp(fd),
    isatty: (fd) => lib.isatty(fd),
    fcntl: (fd, command, argument) => lib.fcntl(fd, command, argument),
    signal: (signal, handler) => lib.signal(signal, handler),
    sigactionQuery: (signal, old) => lib.sigaction(signal, null, old),
    sigactionSet: (signal, act) => lib.sigaction(signal, act, null),
    sigprocmask: (how, set) => lib.sigprocmask(how, set, null),
    pipe2: (fds, flags) => lib.pipe2(fds, flags),
    read: (fd, into, length) => Number(lib.read(fd, into, length)),
    mmapAnonymous: (length, prot, flags) => Number(lib.mmap(null, length, prot, flags, -1, 0)),
    mprotect: (address, length, prot) => lib.mprotect(address, length, prot),
    copyToAddress: (address, from, length) => void lib.memcpy(address, from, length),
    sigrtmin: () => lib.__libc_current_sigrtmin(),
    sigrtmax: () => lib.__libc_current_sigrtmax(),
    execvp(file, args) {
      // The strings must stay referenced until execvp returns: they are, in `strings`.
      const strings = args.map(cString);
      const argv = new BigUint64Array(strings.length + 1); // NULL-terminated
      strings.forEach((text, i) => (argv[i] = BigInt(addressOf(text))));
      return lib.execvp(cString(file), argv);
    },
  });
}
