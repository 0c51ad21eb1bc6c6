/* SPDX-License-Identifier: GPL-3.0-or-later
 * pagetrack: the benchmark's ground truth, inside a guest, independent of DAMON and of the workload.
 *
 *   pagetrack PID START END OUT.jsonl [--interval S] [--idle] [--duration S]
 *
 * Every --interval seconds (default 1) it reads /proc/PID/pagemap over [START, END) (2 MiB aligned)
 * and appends one JSON line: t (epoch s), res (resident 4 KiB pages per 2 MiB chunk), huge (one
 * character per chunk: 1 when the chunk is one PMD-mapped THP: first and last page present at pfn0 and
 * pfn0+511, pfn0 512-aligned, /proc/kpageflags THP+HEAD on pfn0), cpu_s (this process's CPU so far).
 * With --idle each interval is an idle-page-tracking window: it marks every resident page of the range
 * idle (/sys/kernel/mm/page_idle/bitmap, kernels with CONFIG_IDLE_PAGE_TRACKING), waits, and adds
 * acc: pages per chunk that were accessed (read or written) during the window. A THP is one folio, so
 * an accessed huge chunk reads 512: calibrate hotness with the workload at 4 KiB pages.
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

/* Writes the nonzero words of bits[0..n) (PFN words lo..lo+n) to the bitmap, one pwrite per run. */
static int write_runs(int fd, const uint64_t *bits, size_t n, uint64_t lo)
{
	for (size_t i = 0; i < n;) {
		if (!bits[i]) { i++; continue; }
		size_t j = i;
		while (j < n && bits[j]) j++;
		if (pwrite(fd, bits + i, (j - i) * 8, (lo + i) * 8) < 0) return -1;
		i = j;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 5) { fprintf(stderr, "usage: pagetrack PID START END OUT.jsonl [--interval S] [--idle] [--duration S]\n"); return 2; }
	int pid = atoi(argv[1]);
	unsigned long start = strtoul(argv[2], 0, 0), end = strtoul(argv[3], 0, 0);
	double interval = 1.0, duration = 0;
	int idle = 0;
	for (int i = 5; i < argc; i++) {
		if (!strcmp(argv[i], "--idle")) idle = 1;
		else if (!strcmp(argv[i], "--interval") && i + 1 < argc) interval = atof(argv[++i]);
		else if (!strcmp(argv[i], "--duration") && i + 1 < argc) duration = atof(argv[++i]);
		else { fprintf(stderr, "pagetrack: bad argument '%s'\n", argv[i]); return 2; }
	}
	if (start % HUGE || end % HUGE || end <= start) { fprintf(stderr, "pagetrack: START and END must be 2 MiB aligned\n"); return 2; }
	size_t chunks = (end - start) / HUGE, pages = chunks * PER;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	int pm = open(path, O_RDONLY), kpf = open("/proc/kpageflags", O_RDONLY);
	int bm = idle ? open("/sys/kernel/mm/page_idle/bitmap", O_RDWR) : -1;
	FILE *out = fopen(argv[4], "a");
	if (pm < 0 || kpf < 0 || (idle && bm < 0) || !out) {
		fprintf(stderr, "pagetrack: cannot open %s: %s\n", pm < 0 ? path : kpf < 0 ? "/proc/kpageflags" :
			!out ? argv[4] : "/sys/kernel/mm/page_idle/bitmap (CONFIG_IDLE_PAGE_TRACKING?)", strerror(errno));
		return 1;
	}
	uint64_t *ent = malloc(pages * 8);
	unsigned *res = calloc(chunks, sizeof(unsigned)), *acc = calloc(chunks, sizeof(unsigned));
	char *huge = malloc(chunks + 1);
	if (!ent || !res || !acc || !huge) { perror("pagetrack: malloc"); return 1; }
	double t0 = now(), next = t0;
	for (;;) {
		double t = now();
		if (duration > 0 && t - t0 >= duration) break;
		if (pread(pm, ent, pages * 8, start / PAGE * 8) != (ssize_t)(pages * 8)) break; /* PID exited */
		uint64_t lo = UINT64_MAX, hi = 0;
		for (size_t c = 0; c < chunks; c++) {
			uint64_t *e = ent + c * PER, pfn0 = e[0] & PFN_MASK, flags = 0;
			res[c] = 0;
			for (size_t i = 0; i < PER; i++) {
				if (!(e[i] & PRESENT)) continue;
				uint64_t pfn = e[i] & PFN_MASK;
				res[c]++;
				if (pfn < lo) lo = pfn;
				if (pfn > hi) hi = pfn;
			}
			huge[c] = '0';
			if ((e[0] & PRESENT) && (e[PER - 1] & PRESENT) && pfn0 && pfn0 % PER == 0 &&
			    (e[PER - 1] & PFN_MASK) == pfn0 + PER - 1 &&
			    pread(kpf, &flags, 8, pfn0 * 8) == 8 && (flags & KPF_THP) && (flags & KPF_HEAD))
				huge[c] = '1';
		}
		huge[chunks] = 0;
		double window = 0;
		if (idle && hi >= lo) {
			uint64_t wlo = lo / 64, n = hi / 64 - wlo + 1;
			uint64_t *bits = calloc(n, 8);
			if (!bits) { perror("pagetrack: calloc"); return 1; }
			for (size_t i = 0; i < pages; i++)
				if (ent[i] & PRESENT) {
					uint64_t pfn = ent[i] & PFN_MASK;
					bits[pfn / 64 - wlo] |= 1ULL << (pfn % 64);
				}
			if (write_runs(bm, bits, n, wlo)) { perror("pagetrack: page_idle write"); return 1; }
			double marked = now();
			sleep_s(next + interval - marked);
			if (pread(bm, bits, n * 8, wlo * 8) != (ssize_t)(n * 8)) { perror("pagetrack: page_idle read"); return 1; }
			window = now() - marked;
			for (size_t c = 0; c < chunks; c++) {
				acc[c] = 0;
				for (size_t i = c * PER; i < (c + 1) * PER; i++) {
					if (!(ent[i] & PRESENT)) continue;
					uint64_t pfn = ent[i] & PFN_MASK;
					if (!(bits[pfn / 64 - wlo] >> (pfn % 64) & 1)) acc[c]++;
				}
			}
			free(bits);
		}
		fprintf(out, "{\"t\": %.3f, \"res\": [", t);
		for (size_t c = 0; c < chunks; c++) fprintf(out, "%s%u", c ? "," : "", res[c]);
		fprintf(out, "], \"huge\": \"%s\"", huge);
		if (idle) {
			fprintf(out, ", \"window_s\": %.3f, \"acc\": [", window);
			for (size_t c = 0; c < chunks; c++) fprintf(out, "%s%u", c ? "," : "", acc[c]);
			fprintf(out, "]");
		}
		fprintf(out, ", \"cpu_s\": %.3f}\n", cpu_s());
		fflush(out);
		next += interval;
		if (!idle) sleep_s(next - now());
		else if (next < now()) next = now();
	}
	fclose(out);
	return 0;
}
