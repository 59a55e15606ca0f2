/**
 * The libc binding on Node.js, through koffi: the only module that loads it.
 * koffi is an optional dependency loaded here, lazily, so a Bun user never
 * needs it; it ships prebuilt glibc and musl builds, so no compiler or
 * install script is needed. `koffi.errno()` is the live errno: libcFromCalls
 * reads it right after each call. Typed arrays are passed by address.
 */
import { createRequire } from "node:module";
import { messageOf } from "../errno.ts";
import { libcFromCalls, SOCK_FILTER_SIZE, SOCK_FPROG_SIZE, type Libc } from "../libc.ts";
import { SO_ATTACH_FILTER, SOL_SOCKET } from "../netlink/constants.ts";

/** The part of koffi's API used here, typed locally so its types are not needed to build. */
interface Koffi {
  load(path: string): { func(signature: string): CFunction; func(name: string, result: string, args: unknown[]): CFunction };
  struct(fields: Record<string, string>): unknown;
  pointer(type: unknown): unknown;
  errno(): number;
}
type CFunction = (...args: unknown[]) => number;

function requireKoffi(): Koffi {
  try {
    return createRequire(import.meta.url)("koffi") as Koffi;
  } catch (err) {
    if ((err as { code?: string }).code === "MODULE_NOT_FOUND")
      throw new Error("koffi, the libc binding on Node.js, is not installed (it is an optional dependency: npm install koffi)");
    throw new Error(`koffi, the libc binding on Node.js, does not load: ${messageOf(err)}`);
  }
}

export function bindLibc(path: string): Libc {
  const koffi = requireKoffi();
  const lib = koffi.load(path);
  // <linux/filter.h>: struct sock_fprog { unsigned short len; struct sock_filter *filter; }
  const sockFprog = koffi.pointer(koffi.struct({ len: "uint16_t", filter: "void *" }));
  const c = {
    getpid: lib.func("int getpid()"),
    close: lib.func("int close(int)"),
    prctl: lib.func("int prctl(int, unsigned long, unsigned long, unsigned long, unsigned long)"),
    prctlGetInt: lib.func("int prctl(int, int *, unsigned long, unsigned long, unsigned long)"),
    syscall: lib.func("long syscall(long, long, long)"),
    ioctl: lib.func("int ioctl(int, unsigned long, void *)"),
    waitid: lib.func("int waitid(int, uint32_t, void *, int)"),
    socket: lib.func("int socket(int, int, int)"),
    bind: lib.func("int bind(int, void *, uint32_t)"),
    connect: lib.func("int connect(int, void *, uint32_t)"),
    send: lib.func("long send(int, void *, unsigned long, int)"),
    recvfrom: lib.func("long recvfrom(int, void *, unsigned long, int, void *, uint32_t *)"),
    pread: lib.func("long pread(int, void *, unsigned long, long)"),
    setsockopt: lib.func("int setsockopt(int, int, int, void *, uint32_t)"),
    setsockoptFilter: lib.func("setsockopt", "int", ["int", "int", "int", sockFprog, "uint32_t"]),
    getsockopt: lib.func("int getsockopt(int, int, int, int *, uint32_t *)"),
    clockGettime: lib.func("int clock_gettime(int, void *)"),
    poll: lib.func("int poll(void *, unsigned long, int)"),
    setpgid: lib.func("int setpgid(int, int)"),
    getpgrp: lib.func("int getpgrp()"),
    tcsetpgrp: lib.func("int tcsetpgrp(int, int)"),
    tcgetpgrp: lib.func("int tcgetpgrp(int)"),
    isatty: lib.func("int isatty(int)"),
    fcntl: lib.func("int fcntl(int, int, int)"),
    signal: lib.func("intptr_t signal(int, intptr_t)"),
    sigaction: lib.func("int sigaction(int, void *, void *)"),
    sigprocmask: lib.func("int sigprocmask(int, void *, void *)"),
    pipe2: lib.func("int pipe2(int *, int)"),
    read: lib.func("long read(int, void *, unsigned long)"),
    // Addresses as integers: they cross as numbers, never as koffi pointer objects.
    mmap: lib.func("intptr_t mmap(void *, unsigned long, int, int, int, long)"),
    mprotect: lib.func("int mprotect(intptr_t, unsigned long, int)"),
    memcpy: lib.func("intptr_t memcpy(intptr_t, void *, unsigned long)"),
    sigrtmin: lib.func("int __libc_current_sigrtmin()"),
    sigrtmax: lib.func("int __libc_current_sigrtmax()"),
    execvp: lib.func("int execvp(const char *, const char **)"),
  };
  return libcFromCalls({
    path,
    // errno, waitid and recvfrom run once per exit, cold: koffi's own functions, no wrapper layer.
    errno: koffi.errno,
    getpid: () => c.getpid(),
    close: (fd) => c.close(fd),
    prctl: (option, value) => c.prctl(option, value, 0, 0, 0),
    prctlGetInt: (option, into) => c.prctlGetInt(option, into, 0, 0, 0),
    syscall: (number, arg1, arg2) => Number(c.syscall(number, arg1, arg2)),
    ioctl: (fd, request, argument) => c.ioctl(fd, request, argument),
    waitid: c.waitid,
    socket: (domain, type, protocol) => c.socket(domain, type, protocol),
    bind: (fd, address, length) => c.bind(fd, address, length),
    connect: (fd, address, length) => c.connect(fd, address, length),
    send: (fd, data, length, flags) => Number(c.send(fd, data, length, flags)),
    pread: (fd, into, length, offset) => Number(c.pread(fd, into, length, offset)),
    recvfrom: c.recvfrom,
    setsockopt: (fd, level, name, value, length) => c.setsockopt(fd, level, name, value, length),
    getsockopt: (fd, level, name, value, length) => c.getsockopt(fd, level, name, value, length),
    // koffi builds the struct for the call and points `filter` at the program's bytes.
    attachFilter: (fd, program) =>
      c.setsockoptFilter(fd, SOL_SOCKET, SO_ATTACH_FILTER, { len: program.byteLength / SOCK_FILTER_SIZE, filter: program }, SOCK_FPROG_SIZE),
    clockGettime: (clock, timespec) => c.clockGettime(clock, timespec),
    poll: (pollfds, count, timeoutMs) => c.poll(pollfds, count, timeoutMs),
    setpgid: (pid, pgid) => c.setpgid(pid, pgid),
    getpgrp: () => c.getpgrp(),
    tcsetpgrp: (fd, pgrp) => c.tcsetpgrp(fd, pgrp),
    tcgetpgrp: (fd) => c.tcgetpgrp(fd),
    isatty: (fd) => c.isatty(fd),
    fcntl: (fd, command, argument) => c.fcntl(fd, command, argument),
    signal: (signal, handler) => c.signal(signal, handler),
    sigactionQuery: (signal, old) => c.sigaction(signal, null, old),
    sigactionSet: (signal, act) => c.sigaction(signal, act, null),
    sigprocmask: (how, set) => c.sigprocmask(how, set, null),
    pipe2: (fds, flags) => c.pipe2(fds, flags),
    read: (fd, into, length) => Number(c.read(fd, into, length)),
    mmapAnonymous: (length, prot, flags) => Number(c.mmap(null, length, prot, flags, -1, 0)),
    mprotect: (address, length, prot) => c.mprotect(address, length, prot),
    copyToAddress: (address, from, length) => void c.memcpy(address, from, length),
    sigrtmin: () => c.sigrtmin(),
    sigrtmax: () => c.sigrtmax(),
    // koffi turns a JS array of strings into a NULL-terminated char*[] for the call.
    execvp: (file, args) => c.execvp(file, [...args, null]),
  });
}
