/*
 * Benchmark workload: double-forked orphans for a reaper to reap, and a
 * watcher that times how long each stays a zombie. Dev-only; run.ts compiles
 * it with `cc -O2`. It is C, not Python, because a Python fork costs 0.5 to
 * 2 ms on the (loaded) bench machine, too slow for 1000 double forks/s.
 *
 *   workload orphans --count N --rate R   R orphans/s; R = 0: all at once
 *            [--poll-us U] [--settle-ms S]
 *   workload churn --count N              N fork/exit/wait, nothing orphaned
 *
 * Each grandchild writes its pid and, just before _exit, its exit time
 * (CLOCK_MONOTONIC ns) into a slot of a MAP_SHARED mapping. The watcher polls
 * kill(pid, 0) until ESRCH (reaped), then sleeps U us between passes so that
 * it does not starve the reaper on two cores; the measured pass interval is
 * the resolution of every lifetime and is reported. The reaper is our parent
 * (tini, or the Bun daemon): its CPU time and context switches are read from
 * /proc/<ppid> before and after. Prints one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct slot { volatile int64_t pid, exit_ns, gone_ns; };

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void sleep_ns(int64_t ns) {
  struct timespec t = { ns / 1000000000, ns % 1000000000 };
  nanosleep(&t, NULL);
}

/*
 * CPU ns (/proc/PID/task/T/schedstat) and context switches (voluntary + not)
 * per thread. Deltas are taken thread by thread: a thread that ends between
 * two samples must not take its whole history with it (Bun's JIT and GC
 * threads come and go), and one born meanwhile counts from zero.
 */
#define MAX_THREADS 512
struct thread_usage { long tid; int64_t cpu_ns, ctxt; };
struct usage { int n; struct thread_usage t[MAX_THREADS]; };

static struct usage read_usage(pid_t pid) {
  struct usage u = { 0 };
  char path[320], line[256];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *dir = opendir(path);
  if (!dir) return u;
  for (struct dirent *e; (e = readdir(dir)) && u.n < MAX_THREADS;) {
    if (e->d_name[0] == '.') continue;
    struct thread_usage t = { atol(e->d_name), 0, 0 };
    snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", pid, e->d_name);
    FILE *f = fopen(path, "r");
    long long run = 0;
    if (!f) continue; /* ended meanwhile */
    if (fscanf(f, "%lld", &run) == 1) t.cpu_ns = run;
    fclose(f);
    snprintf(path, sizeof path, "/proc/%d/task/%s/status", pid, e->d_name);
    if (!(f = fopen(path, "r"))) continue;
    while (fgets(line, sizeof line, f)) {
      long long n;
      if (sscanf(line, "voluntary_ctxt_switches: %lld", &n) == 1 ||
          sscanf(line, "nonvoluntary_ctxt_switches: %lld", &n) == 1) t.ctxt += n;
    }
    fclose(f);
    u.t[u.n++] = t;
  }
  closedir(dir);
  return u;
}

/* Sum of per-thread growth from `before` to `after`, over the threads alive at `after`. */
static struct thread_usage usage_delta(const struct usage *before, const struct usage *after) {
  struct thread_usage d = { 0, 0, 0 };
  for (int i = 0; i < after->n; i++) {
    struct thread_usage base = { 0, 0, 0 };
    for (int j = 0; j < before->n; j++) if (before->t[j].tid == after->t[i].tid) base = before->t[j];
    d.cpu_ns += after->t[i].cpu_ns - base.cpu_ns;
    d.ctxt += after->t[i].ctxt - base.ctxt;
  }
  return d;
}

/* The grandchild: exits only once its parent is gone, so that it dies an orphan of the reaper. */
static void grandchild(struct slot *s, pid_t parent, int barrier) {
  s->pid = getpid();
  if (barrier >= 0) { char c; while (read(barrier, &c, 1) < 0 && errno == EINTR) {} }
  while (getppid() == parent) sleep_ns(20000);
  s->exit_ns = now_ns();
  _exit(0);
}

/* Forks the intermediate child, which forks the grandchild and exits at once. */
static void spawn_orphan(struct slot *s, int barrier, int barrier_w) {
  pid_t child = fork();
  if (child < 0) { perror("fork"); exit(2); }
  if (child > 0) return;
  if (barrier_w >= 0) close(barrier_w);
  pid_t me = getpid();
  pid_t g = fork();
  if (g == 0) grandchild(s, me, barrier);
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

static int run_orphans(long count, long rate, long poll_us, long settle_ms) {
  struct slot *slots = mmap(NULL, sizeof(struct slot) * count, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (slots == MAP_FAILED) { perror("mmap"); return 2; }
  int64_t *intervals = calloc(1 << 20, sizeof(int64_t));
  long n_intervals = 0, first_open = 0, spawned = 0;
  pid_t reaper = getppid();
  int barrier[2] = { -1, -1 };
  if (rate == 0 && pipe(barrier) < 0) { perror("pipe"); return 2; }

  if (rate == 0) { /* all at once: every grandchild waits on the pipe; closing it releases them together */
    for (; spawned < count; spawned++) spawn_orphan(&slots[spawned], barrier[0], barrier[1]);
    for (long i = 0; i < count; i++) while (!slots[i].pid) { reap_intermediates(); sleep_ns(100000); }
    reap_intermediates();
  }
  struct usage before = read_usage(reaper);
  int64_t start = now_ns(), last_pass = 0, last_exit_seen = start;
  if (rate == 0) close(barrier[1]);
  for (;;) {
    int64_t t = now_ns();
    while (rate > 0 && spawned < count && t >= start + spawned * 1000000000LL / rate) {
      spawn_orphan(&slots[spawned++], -1, -1);
      t = now_ns();
    }
    reap_intermediates();
    if (last_pass && n_intervals < (1 << 20)) intervals[n_intervals++] = t - last_pass;
    last_pass = t;
    long pending = watch_pass(slots, spawned, &first_open);
    if (spawned == count && pending == 0) break;
    for (long i = first_open; i < spawned; i++) if (slots[i].exit_ns > last_exit_seen) last_exit_seen = slots[i].exit_ns;
    if (spawned == count && now_ns() - last_exit_seen > settle_ms * 1000000LL) break;
    sleep_ns(poll_us * 1000);
  }
  int64_t end = now_ns();
  struct usage after = read_usage(reaper);

  int64_t *life = calloc(count, sizeof(int64_t));
  long gone = 0, exited = 0;
  for (long i = 0; i < count; i++) {
    if (slots[i].exit_ns) exited++;
    if (slots[i].gone_ns) life[gone++] = slots[i].gone_ns - slots[i].exit_ns;
  }
  qsort(life, gone, sizeof(int64_t), cmp_i64);
  qsort(intervals, n_intervals, sizeof(int64_t), cmp_i64);
  struct thread_usage used = usage_delta(&before, &after);
  int64_t cpu = used.cpu_ns;
  printf("{\"kind\":\"orphans\",\"count\":%ld,\"rate\":%ld,\"exited\":%ld,\"gone\":%ld,\"leftover\":%ld,"
         "\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"pollUs\":%ld,\"passIntervalP50\":%.3f,\"passIntervalMax\":%.3f,"
         "\"elapsedMs\":%.1f,\"reaperPid\":%d,\"reaperCpuMs\":%.2f,\"reaperCtxt\":%lld,\"reaperCpuMsPer1000\":%.2f}\n",
         count, rate, exited, gone, count - gone, pct_ms(life, gone, 0.5), pct_ms(life, gone, 0.99),
         pct_ms(life, gone, 1.0), poll_us, pct_ms(intervals, n_intervals, 0.5),
         pct_ms(intervals, n_intervals, 1.0), (end - start) / 1e6, reaper, cpu / 1e6,
         (long long)used.ctxt, gone ? cpu / 1e6 * 1000.0 / gone : -1.0);
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
  if (!strcmp(mode, "churn")) return run_churn(count);
  fprintf(stderr, "usage: workload orphans --count N --rate R [--poll-us U] [--settle-ms S] | churn --count N\n");
  return 64;
}
