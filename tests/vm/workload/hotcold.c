/*
 * hotcold: a test workload for DAMON / THP experiments.
 *
 * Maps two private anonymous regions (MAP_PRIVATE | MAP_ANONYMOUS):
 *   - a "hot" region that is accessed continuously (stride writes to every
 *     4 KiB page, or a random pointer chase across its pages),
 *   - a larger "cold" region that is written once (one byte per page) and
 *     then left alone.
 * The hot region starts on a 2 MiB boundary.  A 2 MiB PROT_NONE gap sits
 * between the two regions so that they stay separate VMAs.
 *
 * When both regions are populated it writes one JSON object describing the
 * process (pid, exact address ranges) to --out (atomically: tmp + rename)
 * and to stdout, then keeps running until --duration expires (0 = forever)
 * or it gets SIGTERM/SIGINT.
 *
 * Built on the host with `gcc -static -O2` and copied into guest images.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define HUGE (2UL << 20)
#define MIB (1UL << 20)

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--hot-mb N] [--cold-mb N] [--mode stride|chase]\n"
		"          [--madvise none|hugepage|nohugepage] [--duration SECONDS]\n"
		"          [--out FILE] [--daemonize]\n"
		"defaults: --hot-mb 32 --cold-mb 128 --mode stride --madvise none\n"
		"          --duration 0 (run until SIGTERM) --out /run/hotcold.json\n",
		prog);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_size_mb(const char *s, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > (1UL << 20))
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long hot_mb = 32, cold_mb = 128;
	const char *mode = "stride", *adv = "none", *out = "/run/hotcold.json";
	double duration = 0;
	int daemonize = 0, ready_pipe[2] = { -1, -1 };
	int advice = -1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--daemonize")) {
			daemonize = 1;
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(argv[0]);
			return 0;
		}
		if (!v) {
			fprintf(stderr, "hotcold: option %s needs a value\n", a);
			usage(argv[0]);
			return 2;
		}
		i++;
		if (!strcmp(a, "--hot-mb")) {
			if (parse_size_mb(v, &hot_mb)) {
				fprintf(stderr, "hotcold: bad --hot-mb '%s' (want a positive integer of MiB)\n", v);
				return 2;
			}
		} else if (!strcmp(a, "--cold-mb")) {
			if (parse_size_mb(v, &cold_mb)) {
				fprintf(stderr, "hotcold: bad --cold-mb '%s' (want a positive integer of MiB)\n", v);
				return 2;
			}
		} else if (!strcmp(a, "--mode")) {
			if (strcmp(v, "stride") && strcmp(v, "chase")) {
				fprintf(stderr, "hotcold: bad --mode '%s' (want stride or chase)\n", v);
				return 2;
			}
			mode = v;
		} else if (!strcmp(a, "--madvise")) {
			if (!strcmp(v, "none"))
				advice = -1;
			else if (!strcmp(v, "hugepage"))
				advice = MADV_HUGEPAGE;
			else if (!strcmp(v, "nohugepage"))
				advice = MADV_NOHUGEPAGE;
			else {
				fprintf(stderr, "hotcold: bad --madvise '%s' (want none, hugepage or nohugepage)\n", v);
				return 2;
			}
			adv = v;
		} else if (!strcmp(a, "--duration")) {
			char *end;
			duration = strtod(v, &end);
			if (*end || duration < 0) {
				fprintf(stderr, "hotcold: bad --duration '%s'\n", v);
				return 2;
			}
		} else if (!strcmp(a, "--out")) {
			out = v;
		} else {
			fprintf(stderr, "hotcold: unknown option %s\n", a);
			usage(argv[0]);
			return 2;
		}
	}

	if (daemonize) {
		pid_t pid;
		char c;

		if (pipe(ready_pipe)) {
			perror("hotcold: pipe");
			return 1;
		}
		pid = fork();
		if (pid < 0) {
			perror("hotcold: fork");
			return 1;
		}
		if (pid > 0) {
			/* Parent: wait until the child reports it is ready. */
			close(ready_pipe[1]);
			if (read(ready_pipe[0], &c, 1) != 1 || c != 'R') {
				fprintf(stderr, "hotcold: child failed to start\n");
				return 1;
			}
			return 0;
		}
		close(ready_pipe[0]);
		setsid();
	}

	unsigned long hot = hot_mb * MIB, cold = cold_mb * MIB;
	unsigned long reserve = hot + HUGE + cold + HUGE;
	char *res = mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED) {
		perror("hotcold: mmap reserve");
		return 1;
	}
	uintptr_t base = ((uintptr_t)res + HUGE - 1) & ~(HUGE - 1);
	char *hot_p = (char *)base;
	char *cold_p = hot_p + hot + HUGE; /* 2 MiB PROT_NONE gap */

	/* Give back the alignment slack at both ends. */
	if ((char *)base > res)
		munmap(res, (char *)base - res);
	char *tail = cold_p + cold, *res_end = res + reserve;
	if (tail < res_end)
		munmap(tail, res_end - tail);

	if (mmap(hot_p, hot, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED ||
	    mmap(cold_p, cold, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		perror("hotcold: mmap regions");
		return 1;
	}
	if (advice >= 0 && (madvise(hot_p, hot, advice) || madvise(cold_p, cold, advice))) {
		perror("hotcold: madvise");
		return 1;
	}

	/* Populate: cold once, hot once (the chase list lives in the hot pages). */
	for (unsigned long off = 0; off < cold; off += PAGE)
		cold_p[off] = 1;
	unsigned long npages = hot / PAGE;
	if (!strcmp(mode, "chase")) {
		unsigned long *perm = malloc(npages * sizeof(*perm));
		if (!perm) {
			perror("hotcold: malloc");
			return 1;
		}
		for (unsigned long i = 0; i < npages; i++)
			perm[i] = i;
		srand48(getpid());
		for (unsigned long i = npages - 1; i > 0; i--) {
			unsigned long j = lrand48() % (i + 1), t = perm[i];
			perm[i] = perm[j];
			perm[j] = t;
		}
		for (unsigned long i = 0; i < npages; i++)
			*(char **)(hot_p + perm[i] * PAGE) = hot_p + perm[(i + 1) % npages] * PAGE;
		free(perm);
	} else {
		for (unsigned long off = 0; off < hot; off += PAGE)
			hot_p[off] = 1;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	char json[1024];
	int n = snprintf(json, sizeof(json),
		"{\"pid\": %d, \"mode\": \"%s\", \"madvise\": \"%s\", \"page_size\": %lu, "
		"\"hot\": {\"start\": %lu, \"end\": %lu, \"start_hex\": \"0x%lx\", \"end_hex\": \"0x%lx\", \"bytes\": %lu}, "
		"\"cold\": {\"start\": %lu, \"end\": %lu, \"start_hex\": \"0x%lx\", \"end_hex\": \"0x%lx\", \"bytes\": %lu}, "
		"\"duration\": %g}\n",
		getpid(), mode, adv, PAGE,
		(unsigned long)hot_p, (unsigned long)(hot_p + hot), (unsigned long)hot_p, (unsigned long)(hot_p + hot), hot,
		(unsigned long)cold_p, (unsigned long)(cold_p + cold), (unsigned long)cold_p, (unsigned long)(cold_p + cold), cold,
		duration);
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out, getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, json, n) != n || close(fd) || rename(tmp, out)) {
		fprintf(stderr, "hotcold: cannot write %s: %s\n", out, strerror(errno));
		return 1;
	}
	if (daemonize) {
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
			if (devnull > 2)
				close(devnull);
		}
		if (write(ready_pipe[1], "R", 1) != 1)
			return 1;
		close(ready_pipe[1]);
	} else {
		fputs(json, stdout);
		fflush(stdout);
	}

	double t_end = duration > 0 ? now() + duration : 0;
	volatile char *vh = hot_p;
	char *cur = hot_p;
	unsigned long iter = 0;
	while (!stop_flag) {
		if (!strcmp(mode, "chase")) {
			for (unsigned long i = 0; i < npages; i++)
				cur = *(char **)cur;
		} else {
			for (unsigned long off = 0; off < hot; off += PAGE)
				vh[off + 8]++;
		}
		iter++;
		if (t_end && (iter & 3) == 0 && now() >= t_end)
			break;
	}
	/* Keep `cur` alive so the chase is not optimised away. */
	if (cur == NULL)
		fputs("", stderr);
	return 0;
}
