/*
 * Copyright: (c) 2026, linux_mm.damon contributors
 * GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * hotcold: host test workload for the collapse and hot_processes modules.
 *
 * Maps private anonymous memory (MAP_PRIVATE | MAP_ANONYMOUS; never shared:
 * MADV_COLLAPSE refuses shmem with THP off) in one PROT_NONE reservation:
 *
 *   [hot: --hot-mb, 2 MiB aligned] [2 MiB PROT_NONE gap] [cold: --cold-mb, 2 MiB aligned]
 *
 * The gap keeps hot and cold in separate mappings, so per-VMA smaps tells them
 * apart. Every page of the hot region is written, then the hot region is
 * written continuously (one store per 4 KiB page, stride loop) until the
 * process ends; with --chase it is read by a dependent pointer chase instead.
 * The cold region is written once, one 4 KiB page every --cold-stride-kb
 * (default 64, so 1 page in 16 is resident), and never touched again.
 *
 * Options:
 *   --hot-mb N          hot region size in MiB (default 32)
 *   --cold-mb N         cold region size in MiB (default 64)
 *   --cold-stride-kb N  distance between touched cold pages (default 64)
 *   --chase             pointer chase instead of stride writes
 *   --nohugepage        madvise(MADV_NOHUGEPAGE) on both regions (collapse then fails with EINVAL)
 *   --idle              touch everything once, then sleep instead of looping
 *   --busy-pct N        access the hot region N % of the time (default 100): in every
 *                       10 ms period, loop over it for N/10 ms, then sleep the rest; the
 *                       hot region stays accessed in every period at a fraction of a CPU
 *   --duration S        exit after S seconds (default 0: run until SIGTERM/SIGINT)
 *   --out FILE          where to write the JSON description (default: stdout only)
 *
 * When both regions are populated it writes
 *   {"pid": P, "hot": [start, end], "cold": [start, end], "page": 4096}
 * to FILE (tmp file + rename, so a reader never sees half a file) and stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 15
#endif

#define PAGE 4096UL
#define HUGE (2UL << 20)
#define MIB (1UL << 20)

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long parse_ulong(const char *opt, const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || *s == '\0') {
		fprintf(stderr, "hotcold: %s: bad number '%s'\n", opt, s);
		exit(2);
	}
	return v;
}

static int write_description(const char *out, const char *json)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out, (int)getpid()) >= (int)sizeof(tmp))
		return -1;
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fputs(json, f);
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, out);
}

int main(int argc, char **argv)
{
	unsigned long hot_mb = 32, cold_mb = 64, cold_stride_kb = 64;
	int chase = 0, nohuge = 0, idle = 0;
	unsigned long busy_pct = 100;
	double duration = 0;
	const char *out = NULL;
	char json[512];

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--chase")) {
			chase = 1;
		} else if (!strcmp(a, "--nohugepage")) {
			nohuge = 1;
		} else if (!strcmp(a, "--idle")) {
			idle = 1;
		} else if (v && !strcmp(a, "--hot-mb")) {
			hot_mb = parse_ulong(a, v), i++;
		} else if (v && !strcmp(a, "--cold-mb")) {
			cold_mb = parse_ulong(a, v), i++;
		} else if (v && !strcmp(a, "--cold-stride-kb")) {
			cold_stride_kb = parse_ulong(a, v), i++;
		} else if (v && !strcmp(a, "--busy-pct")) {
			busy_pct = parse_ulong(a, v), i++;
		} else if (v && !strcmp(a, "--duration")) {
			duration = atof(v), i++;
		} else if (v && !strcmp(a, "--out")) {
			out = v, i++;
		} else {
			fprintf(stderr, "usage: %s [--hot-mb N] [--cold-mb N] [--cold-stride-kb N] [--chase]\n"
				"       [--nohugepage] [--idle] [--busy-pct N] [--duration S] [--out FILE]\n", argv[0]);
			return 2;
		}
	}
	if (busy_pct < 1 || busy_pct > 100) {
		fprintf(stderr, "hotcold: --busy-pct must be within 1..100\n");
		return 2;
	}
	if (hot_mb < 2 || hot_mb % 2 || cold_mb % 2 || cold_stride_kb < 4 || cold_stride_kb % 4) {
		fprintf(stderr, "hotcold: sizes must be even MiB (hot >= 2) and the stride a multiple of 4 KiB\n");
		return 2;
	}

	size_t hot_sz = hot_mb * MIB, cold_sz = cold_mb * MIB;
	size_t total = HUGE + hot_sz + HUGE + cold_sz + HUGE; /* slack for alignment, gap, slack */
	char *res = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (res == MAP_FAILED) {
		perror("hotcold: mmap");
		return 1;
	}
	char *hot = (char *)(((uintptr_t)res + HUGE - 1) & ~(HUGE - 1));
	char *cold = hot + hot_sz + HUGE;

	if (mprotect(hot, hot_sz, PROT_READ | PROT_WRITE) || (cold_sz && mprotect(cold, cold_sz, PROT_READ | PROT_WRITE))) {
		perror("hotcold: mprotect");
		return 1;
	}
	if (nohuge && (madvise(hot, hot_sz, MADV_NOHUGEPAGE) || (cold_sz && madvise(cold, cold_sz, MADV_NOHUGEPAGE)))) {
		perror("hotcold: madvise(MADV_NOHUGEPAGE)");
		return 1;
	}

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	/* Populate: every hot page; for --chase, a random cyclic permutation of pages. */
	size_t npages = hot_sz / PAGE;
	if (chase) {
		size_t *order = malloc(npages * sizeof(*order));

		if (!order) {
			perror("hotcold: malloc");
			return 1;
		}
		for (size_t i = 0; i < npages; i++)
			order[i] = i;
		srand(12345);
		for (size_t i = npages - 1; i > 0; i--) {
			size_t j = (size_t)rand() % (i + 1), t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
		for (size_t i = 0; i < npages; i++)
			*(char **)(hot + order[i] * PAGE) = hot + order[(i + 1) % npages] * PAGE;
		free(order);
	} else {
		for (size_t off = 0; off < hot_sz; off += PAGE)
			hot[off] = 1;
	}
	for (size_t off = 0; off < cold_sz; off += cold_stride_kb * 1024)
		cold[off] = 1;

	snprintf(json, sizeof(json),
		 "{\"pid\": %d, \"hot\": [%lu, %lu], \"cold\": [%lu, %lu], \"page\": %lu}\n",
		 (int)getpid(), (unsigned long)(uintptr_t)hot, (unsigned long)(uintptr_t)(hot + hot_sz),
		 (unsigned long)(uintptr_t)cold, (unsigned long)(uintptr_t)(cold + cold_sz), PAGE);
	if (out && write_description(out, json)) {
		perror("hotcold: writing --out");
		return 1;
	}
	fputs(json, stdout);
	fflush(stdout);

	double deadline = duration > 0 ? now() + duration : 0;
	volatile char sink = 0;
	char *p = hot;
	unsigned long rounds = 0;
	const double period = 0.010, busy = period * busy_pct / 100.0;
	double period_start = now();

	while (!stop_flag) {
		if (!idle && busy_pct < 100 && now() - period_start >= busy) {
			double rest = period_start + period - now();

			if (rest > 0)
				usleep((useconds_t)(rest * 1e6));
			period_start = now();
		}
		if (idle) {
			usleep(100000);
		} else if (chase) {
			for (int k = 0; k < 65536; k++)
				p = *(char **)p;
			sink = *p;
		} else {
			for (size_t off = 0; off < hot_sz; off += PAGE)
				hot[off + 64] = (char)rounds;
		}
		rounds++;
		if (deadline && (rounds & 15) == 0 && now() >= deadline)
			break;
		if (idle && deadline && now() >= deadline)
			break;
	}
	(void)sink;
	return 0;
}
