/*
 * What the bench workload (workload.c) measures of its reaper, the process
 * it runs under: per-thread CPU time and context switches from /proc, and
 * the control FIFOs of a `perf stat` attached to the reaper. Included once,
 * by workload.c; the runner compiles that one file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* Growth from `before` to `after`, over the threads alive at `after`; main_cpu_ns is the main thread's share
   (its TID is the PID), the rest is the runtime's helper threads (a JIT's compiler, a GC's helpers). */
struct usage_delta { int64_t cpu_ns, main_cpu_ns, ctxt; };

static struct usage_delta usage_delta(pid_t pid, const struct usage *before, const struct usage *after) {
  struct usage_delta d = { 0, 0, 0 };
  for (int i = 0; i < after->n; i++) {
    struct thread_usage base = { 0, 0, 0 };
    for (int j = 0; j < before->n; j++) if (before->t[j].tid == after->t[i].tid) base = before->t[j];
    d.cpu_ns += after->t[i].cpu_ns - base.cpu_ns;
    if (after->t[i].tid == pid) d.main_cpu_ns = after->t[i].cpu_ns - base.cpu_ns;
    d.ctxt += after->t[i].ctxt - base.ctxt;
  }
  return d;
}

/* perf stat's control FIFOs (--perf-ctl DIR): DIR/ctl takes commands, DIR/ack answers each. */
struct perf_ctl { int ctl, ack; };

static struct perf_ctl perf_open(const char *dir) {
  struct perf_ctl p = { -1, -1 };
  if (!dir) return p;
  char path[300];
  snprintf(path, sizeof path, "%s/ctl", dir);
  /* ENXIO until perf has opened its end; polled, perf may still be attaching to the reaper */
  for (int tries = 0; (p.ctl = open(path, O_WRONLY | O_NONBLOCK)) < 0; tries++) {
    if (errno != ENXIO || tries > 6000) { perror("perf ctl fifo"); exit(2); }
    sleep_ns(10000000);
  }
  snprintf(path, sizeof path, "%s/ack", dir);
  if ((p.ack = open(path, O_RDONLY)) < 0) { perror("perf ack fifo"); exit(2); }
  return p;
}

/* Sends `enable` or `disable` and waits for perf's ack, so the counters bracket the window exactly. */
static void perf_command(struct perf_ctl p, const char *command) {
  if (p.ctl < 0) return;
  char ack[8];
  if (write(p.ctl, command, strlen(command)) < 0 || read(p.ack, ack, sizeof ack) <= 0) {
    perror("perf control");
    exit(2);
  }
}

