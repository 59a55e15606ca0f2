/*
 * Benchmark workload: double-forked orphans for a reaper to reap, and a
 * watcher that times how long each stays a zombie. Dev-only; run.ts compiles
 * it with `cc -O2`. It is C, not Python, because a Python fork costs 0.5 to
 * 2 ms on the (loaded) bench machine, too slow for 1000 double forks/s.
 *
 *   workload orphans --count N --rate R   R orphans/s; R = 0: all at once
 *            [--poll-us U] [--settle-ms S]
 *   workload adopted --live N --exit M --rate R   N orphans made and adopted
 *            [--poll-us U] [--settle-ms S]        first; then M of them exit at
 *            [--perf-ctl DIR]                     R/s while the rest stay alive
 *            [--warm W]                           W more exit at R/s before it
 *   workload churn --count N              N fork/exit/wait, nothing orphaned
 *
 * Each grandchild writes its pid and, just before _exit, its exit time
 * (CLOCK_MONOTONIC ns) into a slot of a MAP_SHARED mapping. The watcher polls
 * kill(pid, 0) until ESRCH (reaped), then sleeps U us between passes so that
 * it does not starve the reaper on two cores; the measured pass interval is
 * the resolution of every lifetime and is reported. The reaper is our parent
 * (tini, or the Bun daemon): its CPU time and context switches are read from
 * /proc/<ppid> before and after. Prints one JSON object on stdout.
 *
 * In `adopted` mode the measured window starts once every orphan is alive and
 * adopted (the reaper has N live children) and ends when the M released ones
 * are gone; the rest are released and reaped after it. With --warm, W more
 * are made with them and released at the same rate before the window, outside
 * every figure: what a reaper costs once it has reaped before (for a JIT, with
 * its code compiled), beside the first exits after its start. With --perf-ctl, the
 * same window is bracketed by `enable` / `disable` on the control FIFOs of a
 * `perf stat --control fifo:DIR/ctl,DIR/ack` attached to the reaper.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "reaper-usage.h"

struct slot { volatile int64_t pid, exit_ns, gone_ns, adopted; };

/* The grandchild: exits only once its parent is gone, so that it dies an orphan of the reaper. */
static void grandchild(struct slot *s, pid_t parent, int barrier) {
  s->pid = getpid();
  if (barrier >= 0) { char c; while (read(barrier, &c, 1) < 0 && errno == EINTR) {} }
  while (getppid() == parent) sleep_ns(20000);
  s->exit_ns = now_ns();
  _exit(0);
}

/* The adopted grandchild's slot, for its SIGUSR1 handler (each grandchild is its own process). */
static struct slot *released_slot;

static void on_release(int sig) {
  (void)sig;
  released_slot->exit_ns = now_ns();
  _exit(0);
}

/*
 * The adopted grandchild: once adopted, it sleeps in ppoll until SIGUSR1 (the
 * release, one kill per orphan: no herd on a shared pipe) or until the
 * lifeline pipe hangs up (the workload died: nobody will release it).
 */
static void adopted_grandchild(struct slot *s, pid_t parent, int lifeline) {
  released_slot = s;
  s->pid = getpid();
  sigset_t usr1, unblocked;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, &unblocked); /* a release before the handler would kill it unstamped */
  struct sigaction act = { .sa_handler = on_release };
  sigaction(SIGUSR1, &act, NULL);
  while (getppid() == parent) sleep_ns(20000);
  s->adopted = 1;
  struct pollfd p = { lifeline, POLLIN, 0 };
  for (;;) if (ppoll(&p, 1, NULL, &unblocked) > 0) _exit(1);
}

/*
 * Forks the intermediate child, which forks the grandchild and exits at once.
 * `wait_fd` is the burst barrier (or the lifeline when `adopted`); `close_fd`
 * is the workload's end of that pipe, closed in the children.
 */
static void spawn_orphan(struct slot *s, int wait_fd, int close_fd, int adopted) {
  pid_t child = fork();
  if (child < 0) { perror("fork"); exit(2); }
  if (child > 0) return;
  if (close_fd >= 0) close(close_fd);
  pid_t me = getpid();
  pid_t g = fork();
  if (g == 0) {
    if (adopted) adopted_grandchild(s, me, wait_fd);
    grandchild(s, me, wait_fd);
  }
  _exit(g < 0 ? 1 : 0);
}

static void reap_intermediates(void) { while (waitpid(-1, NULL, WNOHANG) > 0) {} }

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_ms(int64_t *sorted, long n, double p) {
  if (n == 0) return -1;
  long i = (long)(p * (n - 1) + 0.5);
  return sorted[i] / 1e6;
}

static long arg_long(int argc, char **argv, const char *name, long dflt) {
  for (int i = 2; i + 1 < argc; i++) if (!strcmp(argv[i], name)) return atol(argv[i + 1]);
  return dflt;
}

/* One pass over the exited, not yet gone orphans; returns how many are still pending. */
static long watch_pass(struct slot *slots, long to, long *first_open) {
  long pending = 0;
  int64_t t = now_ns();
  for (long i = *first_open; i < to; i++) {
    struct slot *s = &slots[i];
    if (s->gone_ns) continue;
    if (!s->exit_ns) { pending++; continue; }
    if (kill((pid_t)s->pid, 0) < 0 && errno == ESRCH) s->gone_ns = t; else pending++;
  }
  while (*first_open < to && slots[*first_open].gone_ns) (*first_open)++;
  return pending;
}

/* What one measured window saw: orphans [0, count) were started, paced, in it. */
struct window {
  const char *kind;
  long count, rate, poll_us, n_intervals;
  int64_t start, end, setup_cpu_ns, *intervals;
  struct usage_delta used;
};

/* Pacing steps: `orphans` makes the next orphan, `adopted` releases the next one. */
static void spawn_next(struct slot *s) { spawn_orphan(s, -1, -1, 0); }
static void release_next(struct slot *s) { kill((pid_t)s->pid, SIGUSR1); }

/*
 * Starts `count` orphans through `next` at `rate`/s (those before `started`
 * are under way already) and watches until all are gone or none has exited
 * for settle_ms. The reaper's usage is sampled (and perf enabled) around it.
 */
static struct window watch(struct slot *slots, long count, long rate, long started, void (*next)(struct slot *),
                           int release_fd, long poll_us, long settle_ms, struct perf_ctl perf) {
  struct window w = { .count = count, .rate = rate, .poll_us = poll_us, .intervals = calloc(1 << 20, sizeof(int64_t)) };
  long first_open = 0;
  pid_t reaper = getppid();
  perf_command(perf, "enable\n");
  struct usage before = read_usage(reaper);
  int64_t last_pass = 0, last_exit_seen;
  w.start = last_exit_seen = now_ns();
  if (release_fd >= 0) close(release_fd);
  for (;;) {
    int64_t t = now_ns();
    while (started < count && (rate == 0 || t >= w.start + started * 1000000000LL / rate)) {
      next(&slots[started++]);
      t = now_ns();
    }
    reap_intermediates();
    if (last_pass && w.n_intervals < (1 << 20)) w.intervals[w.n_intervals++] = t - last_pass;
    last_pass = t;
    long open_before = first_open;
    long pending = watch_pass(slots, started, &first_open);
    if (started == count && pending == 0) break;
    /* From before the pass: an orphan that exited and was reaped between two passes is an exit seen too.
       Counting only those still open left last_exit_seen at the start when every reap was that quick, and
       the settle time-out then ended the window right after the last release, before the last reap. */
    for (long i = open_before; i < started; i++) if (slots[i].exit_ns > last_exit_seen) last_exit_seen = slots[i].exit_ns;
    if (started == count && now_ns() - last_exit_seen > settle_ms * 1000000LL) break;
    sleep_ns(poll_us * 1000);
  }
  w.end = now_ns();
  struct usage after = read_usage(reaper);
  perf_command(perf, "disable\n");
  w.used = usage_delta(reaper, &before, &after);
  return w;
}

static void print_window(struct window *w, struct slot *slots, long live) {
  int64_t *life = calloc(w->count, sizeof(int64_t));
  long gone = 0, exited = 0;
  for (long i = 0; i < w->count; i++) {
    if (slots[i].exit_ns) exited++;
    if (slots[i].gone_ns) life[gone++] = slots[i].gone_ns - slots[i].exit_ns;
  }
  qsort(life, gone, sizeof(int64_t), cmp_i64);
  qsort(w->intervals, w->n_intervals, sizeof(int64_t), cmp_i64);
  double cpu_ms = w->used.cpu_ns / 1e6;
  printf("{\"kind\":\"%s\",\"count\":%ld,\"live\":%ld,\"rate\":%ld,\"exited\":%ld,\"gone\":%ld,\"leftover\":%ld,"
         "\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"pollUs\":%ld,\"passIntervalP50\":%.3f,\"passIntervalMax\":%.3f,"
         "\"elapsedMs\":%.1f,\"reaperPid\":%d,\"reaperCpuMs\":%.2f,\"reaperCtxt\":%lld,\"reaperCpuMsPer1000\":%.2f,"
         "\"setupCpuMs\":%.2f,\"reaperMainThreadCpuMs\":%.2f,\"reaperOtherThreadsCpuMs\":%.2f}\n",
         w->kind, w->count, live, w->rate, exited, gone, w->count - gone, pct_ms(life, gone, 0.5),
         pct_ms(life, gone, 0.99), pct_ms(life, gone, 1.0), w->poll_us, pct_ms(w->intervals, w->n_intervals, 0.5),
         pct_ms(w->intervals, w->n_intervals, 1.0), (w->end - w->start) / 1e6, getppid(), cpu_ms,
         (long long)w->used.ctxt, gone ? cpu_ms * 1000.0 / gone : -1.0, w->setup_cpu_ns / 1e6,
         w->used.main_cpu_ns / 1e6, (w->used.cpu_ns - w->used.main_cpu_ns) / 1e6);
}

static struct slot *map_slots(long count) {
  struct slot *slots = mmap(NULL, sizeof(struct slot) * count, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (slots == MAP_FAILED) { perror("mmap"); exit(2); }
  return slots;
}

static int run_orphans(long count, long rate, long poll_us, long settle_ms) {
  struct slot *slots = map_slots(count);
  long spawned = 0;
  int barrier[2] = { -1, -1 };
  if (rate == 0) { /* all at once: every grandchild waits on the pipe; closing it releases them together */
    if (pipe(barrier) < 0) { perror("pipe"); return 2; }
    for (; spawned < count; spawned++) spawn_orphan(&slots[spawned], barrier[0], barrier[1], 0);
    for (long i = 0; i < count; i++) while (!slots[i].pid) { reap_intermediates(); sleep_ns(100000); }
    reap_intermediates();
  }
  struct perf_ctl no_perf = { -1, -1 };
  struct window w = watch(slots, count, rate, spawned, spawn_next, barrier[1], poll_us, settle_ms, no_perf);
  w.kind = "orphans";
  print_window(&w, slots, 0);
  return 0;
}

/*
 * `live` orphans, all made and adopted before the window; then the first
 * `exits` are released at `rate`/s and timed. The rest are released after the
 * window and waited for (up to settle_ms), so that none outlives the run; if
 * the workload dies first, the lifeline pipe hangs up and they exit anyway.
 * With `warm`, that many more are made and released at `rate`/s first, before
 * the window: a reaper that has reaped before (a JIT's code compiled).
 */
static int run_adopted(long live, long exits, long rate, long warm, long poll_us, long settle_ms, const char *perf_dir) {
  if (exits > live) exits = live;
  struct slot *warm_slots = map_slots(warm + live);
  struct slot *slots = warm_slots + warm;
  pid_t reaper = getppid();
  struct usage setup_before = read_usage(reaper);
  int lifeline[2];
  if (pipe(lifeline) < 0) { perror("pipe"); return 2; }
  for (long i = 0; i < warm + live; i++) {
    spawn_orphan(&warm_slots[i], lifeline[0], lifeline[1], 1);
    if (i % 64 == 63) reap_intermediates();
  }
  close(lifeline[0]);
  for (long i = 0; i < warm + live; i++) while (!warm_slots[i].adopted) { reap_intermediates(); sleep_ns(1000000); }
  reap_intermediates();
  struct usage setup_after = read_usage(reaper);
  struct perf_ctl no_perf = { -1, -1 };
  if (warm > 0) free(watch(warm_slots, warm, rate, 0, release_next, -1, poll_us, settle_ms, no_perf).intervals);
  struct perf_ctl perf = perf_open(perf_dir);
  struct window w = watch(slots, exits, rate, 0, release_next, -1, poll_us, settle_ms, perf);
  w.kind = "adopted";
  w.setup_cpu_ns = usage_delta(reaper, &setup_before, &setup_after).cpu_ns;
  long first_open = exits;
  for (long i = exits; i < live; i++) release_next(&slots[i]);
  for (int64_t until = now_ns() + settle_ms * 1000000LL; watch_pass(slots, live, &first_open) && now_ns() < until;)
    sleep_ns(poll_us * 1000);
  print_window(&w, slots, live);
  close(lifeline[1]);
  return 0;
}

/* An unrelated process tree: fork, exit, wait; nothing is orphaned, nothing reaches any reaper. */
static int run_churn(long count) {
  int64_t start = now_ns();
  for (long i = 0; i < count; i++) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    if (p < 0) { perror("fork"); return 2; }
    waitpid(p, NULL, 0);
  }
  printf("{\"kind\":\"churn\",\"count\":%ld,\"elapsedMs\":%.1f}\n", count, (now_ns() - start) / 1e6);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  long count = arg_long(argc, argv, "--count", 1000);
  if (!strcmp(mode, "orphans"))
    return run_orphans(count, arg_long(argc, argv, "--rate", 1000), arg_long(argc, argv, "--poll-us", 500),
                       arg_long(argc, argv, "--settle-ms", 3000));
  if (!strcmp(mode, "adopted")) {
    const char *perf_dir = NULL;
    for (int i = 2; i + 1 < argc; i++) if (!strcmp(argv[i], "--perf-ctl")) perf_dir = argv[i + 1];
    return run_adopted(arg_long(argc, argv, "--live", 1000), arg_long(argc, argv, "--exit", 1000),
                       arg_long(argc, argv, "--rate", 200), arg_long(argc, argv, "--warm", 0), arg_long(argc, argv, "--poll-us", 500),
                       arg_long(argc, argv, "--settle-ms", 3000), perf_dir);
  }
  if (!strcmp(mode, "churn")) return run_churn(count);
  fprintf(stderr, "usage: workload orphans --count N --rate R [--poll-us U] [--settle-ms S]\n"
                  "     | adopted --live N --exit M --rate R [--warm W] [--poll-us U] [--settle-ms S] [--perf-ctl DIR]\n"
                  "     | churn --count N\n");
  return 64;
}
