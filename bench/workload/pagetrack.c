/* SPDX-License-Identifier: GPL-3.0-or-later
 * pagetrack: the benchmark's ground truth, inside a guest, independent of DAMON and of the workload.
 *
 *   pagetrack PID START END OUT.jsonl [--interval S] [--written] [--duration S]
 *
 * Every --interval seconds (default 1) it reads /proc/PID/pagemap over [START, END) (2 MiB aligned)
 * and appends one JSON line: t (epoch s, the window's start), res (resident 4 KiB pages per 2 MiB chunk), huge (one
 * character per chunk: 1 when the chunk is one PMD-mapped THP: first and last page present at pfn0 and
 * pfn0+511, pfn0 512-aligned, /proc/kpageflags THP+HEAD on pfn0), cpu_s (this process's CPU so far).
 * With --written each interval is a soft-dirty window: it clears the process's soft-dirty bits
 * (/proc/PID/clear_refs 4: every PTE write-protected), waits, and adds acc: pages per chunk written
 * during the window (pagemap bit 55). Writes only: Debian's kernels have no idle page tracking
 * (CONFIG_IDLE_PAGE_TRACKING unset in both the cloud and the generic flavour, 6.12 and 7.3), so the
 * benchmark workloads write on every access. Each first write to a page in a window takes a
 * write-protect fault: calibrate with the workload alone and compare its access rate.
 * Stops when PID exits or after --duration. Written in C because Python is too slow under TCG for
 * 10^5-page windows.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define HUGE (2UL << 20)
#define PAGE 4096UL
#define PER (HUGE / PAGE)
#define PFN_MASK ((1ULL << 55) - 1)
#define PRESENT (1ULL << 63)
#define SOFT_DIRTY (1ULL << 55)
#define KPF_THP (1ULL << 22)
#define KPF_HEAD (1ULL << 15)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void sleep_s(double s)
{
	if (s <= 0) return;
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };
	nanosleep(&ts, NULL);
}

static int clear_soft_dirty(int pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", pid);
	int fd = open(path, O_WRONLY);
	if (fd < 0) return -1;
	int ok = write(fd, "4", 1) == 1;
	close(fd);
	return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc < 5) { fprintf(stderr, "usage: pagetrack PID START END OUT.jsonl [--interval S] [--written] [--duration S]\n"); return 2; }
	int pid = atoi(argv[1]);
	unsigned long start = strtoul(argv[2], 0, 0), end = strtoul(argv[3], 0, 0);
	double interval = 1.0, duration = 0;
	int written = 0;
	for (int i = 5; i < argc; i++) {
		if (!strcmp(argv[i], "--written")) written = 1;
		else if (!strcmp(argv[i], "--interval") && i + 1 < argc) interval = atof(argv[++i]);
		else if (!strcmp(argv[i], "--duration") && i + 1 < argc) duration = atof(argv[++i]);
		else { fprintf(stderr, "pagetrack: bad argument '%s'\n", argv[i]); return 2; }
	}
	if (start % HUGE || end % HUGE || end <= start) { fprintf(stderr, "pagetrack: START and END must be 2 MiB aligned\n"); return 2; }
	size_t chunks = (end - start) / HUGE, pages = chunks * PER;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	int pm = open(path, O_RDONLY), kpf = open("/proc/kpageflags", O_RDONLY);
	FILE *out = fopen(argv[4], "a");
	if (pm < 0 || kpf < 0 || !out) {
		fprintf(stderr, "pagetrack: cannot open %s: %s\n", pm < 0 ? path : kpf < 0 ? "/proc/kpageflags" : argv[4],
			strerror(errno));
		return 1;
	}
	uint64_t *ent = malloc(pages * 8);
	unsigned *res = calloc(chunks, sizeof(unsigned)), *acc = calloc(chunks, sizeof(unsigned));
	char *huge = malloc(chunks + 1);
	if (!ent || !res || !acc || !huge) { perror("pagetrack: malloc"); return 1; }
	double t0 = now(), next = t0;
	for (;;) {
		double t = now(), window = 0;
		if (duration > 0 && t - t0 >= duration) break;
		if (written) {
			if (clear_soft_dirty(pid)) break; /* PID exited */
			sleep_s(next + interval - now());
			window = now() - t;
		}
		if (pread(pm, ent, pages * 8, start / PAGE * 8) != (ssize_t)(pages * 8)) break; /* PID exited */
		for (size_t c = 0; c < chunks; c++) {
			uint64_t *e = ent + c * PER, pfn0 = e[0] & PFN_MASK, flags = 0;
			res[c] = acc[c] = 0;
			for (size_t i = 0; i < PER; i++)
				if (e[i] & PRESENT) {
					res[c]++;
					acc[c] += !!(e[i] & SOFT_DIRTY);
				}
			huge[c] = '0';
			if ((e[0] & PRESENT) && (e[PER - 1] & PRESENT) && pfn0 && pfn0 % PER == 0 &&
			    (e[PER - 1] & PFN_MASK) == pfn0 + PER - 1 &&
			    pread(kpf, &flags, 8, pfn0 * 8) == 8 && (flags & KPF_THP) && (flags & KPF_HEAD))
				huge[c] = '1';
		}
		huge[chunks] = 0;
		fprintf(out, "{\"t\": %.3f, \"res\": [", t);
		for (size_t c = 0; c < chunks; c++) fprintf(out, "%s%u", c ? "," : "", res[c]);
		fprintf(out, "], \"huge\": \"%s\"", huge);
		if (written) {
			fprintf(out, ", \"window_s\": %.3f, \"acc\": [", window);
			for (size_t c = 0; c < chunks; c++) fprintf(out, "%s%u", c ? "," : "", acc[c]);
			fprintf(out, "]");
		}
		fprintf(out, ", \"cpu_s\": %.3f}\n", cpu_s());
		fflush(out);
		next += interval;
		if (!written) sleep_s(next - now());
		else if (next < now()) next = now();
	}
	fclose(out);
	return 0;
}
