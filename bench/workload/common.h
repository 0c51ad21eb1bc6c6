/* SPDX-License-Identifier: GPL-3.0-or-later
 * What the benchmark workloads (chase.c, graded.c) share: clock, random numbers, SIGTERM/SIGINT
 * handling, the atomic write of their JSON description and --daemonize (the parent returns only
 * once the child has populated its memory and written that description).
 */
#ifndef BENCH_WORKLOAD_COMMON_H
#define BENCH_WORKLOAD_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;
static void on_signal(int s) { (void)s; stop_flag = 1; }

static void catch_stop_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long long rng_state = 88172645463325252ULL;
static unsigned long long rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* --daemonize, first half: fork; the parent waits for daemon_ready() and exits with its outcome.
 * Returns in the child only (the pipe's write end in ready_fd). */
static int daemon_fork(const char *prog, int *ready_fd)
{
	int p[2];
	if (pipe(p)) { perror(prog); return -1; }
	pid_t child = fork();
	if (child < 0) { perror(prog); return -1; }
	if (child > 0) {
		char c;
		close(p[1]);
		_exit(read(p[0], &c, 1) == 1 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	*ready_fd = p[1];
	return 0;
}

/* --daemonize, second half: detach from the terminal and let the parent return. */
static int daemon_ready(int ready_fd)
{
	int devnull = open("/dev/null", O_RDWR);
	if (devnull >= 0) { dup2(devnull, 0); dup2(devnull, 1); dup2(devnull, 2); if (devnull > 2) close(devnull); }
	if (write(ready_fd, "R", 1) != 1) return -1;
	close(ready_fd);
	return 0;
}

/* Writes buf to path through a temporary file and rename, so a reader never sees half of it. */
static int write_atomic(const char *prog, const char *path, const char *buf, size_t n)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, buf, n) != (ssize_t)n || close(fd) || rename(tmp, path)) {
		fprintf(stderr, "%s: cannot write %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	return 0;
}

#endif
