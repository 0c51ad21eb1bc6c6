/* SPDX-License-Identifier: GPL-3.0-or-later
 * graded: benchmark workload of linux_mm.damon with graded hotness (bench/workloads.py).
 *
 * One private anonymous mapping, 2 MiB aligned, split into 2 MiB chunks.
 *   --mode zipf (default)  --size-mb MB, every page written once; chunk access probabilities follow
 *                          Zipf(--zipf-s) over a seeded random rank -> chunk permutation, so the hot
 *                          chunks are scattered through the range; --shift-after S draws a new
 *                          permutation (the hot set moves).
 *   --mode behind          --cold-mb MB first (one page per --cold-stride-kb written once, never
 *                          again), then --hot-mb MB at higher addresses in the same mapping, every
 *                          page written, accessed uniformly: khugepaged's address-order worst case.
 * Each access reads one random 64-byte line of a random page of the chosen chunk (--write: also
 * increments it). --rate N caps accesses per second (0: as fast as it runs), so that, as in a real
 * server, a hot page is not touched at every DAMON sample.
 *
 * --madvise hugepage|nohugepage  before the first touch     --late-madvise hugepage  after populating
 * --oracle FILE   at the start of phase P, MADV_COLLAPSE the chunk indices on line P of FILE
 *
 * When populated it writes JSON to --out (atomically): pid, t0, the range, chunk count and, for the
 * cross-check only, the chunks in rank order per phase; with --daemonize only then does the parent
 * return. Every second it appends "epoch_s accesses_per_s phase" to --log, and "# shift EPOCH".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#define HUGE (2UL << 20)
#define PAGE 4096UL
#define LINE 64UL
#define PHASES 2

static double unit(void) { return (rnd() >> 11) * (1.0 / 9007199254740992.0); }

static void shuffle(unsigned *a, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) a[i] = i;
	for (unsigned long i = n - 1; i > 0; i--) {
		unsigned long j = rnd() % (i + 1);
		unsigned t = a[i]; a[i] = a[j]; a[j] = t;
	}
}

/* Index of the first cdf entry >= u. */
static unsigned long pick(const double *cdf, unsigned long n, double u)
{
	unsigned long lo = 0, hi = n - 1;
	while (lo < hi) {
		unsigned long mid = (lo + hi) / 2;
		if (cdf[mid] < u) lo = mid + 1; else hi = mid;
	}
	return lo;
}

/* Reads the oracle file: line P lists the chunk indices to collapse at the start of phase P. */
static int oracle_collapse(const char *path, int phase, char *base, unsigned long chunks)
{
	FILE *f = fopen(path, "r");
	if (!f) { perror("graded: oracle file"); return -1; }
	char *line = NULL;
	size_t cap = 0;
	int p = 0;
	while (getline(&line, &cap, f) >= 0) {
		if (p++ != phase) continue;
		for (char *tok = strtok(line, ", \n"); tok; tok = strtok(NULL, ", \n")) {
			unsigned long c = strtoul(tok, 0, 0);
			if (c < chunks && madvise(base + c * HUGE, HUGE, MADV_COLLAPSE)) perror("graded: MADV_COLLAPSE");
		}
	}
	free(line);
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long size_mb = 1024, cold_mb = 1024, hot_mb = 512, stride_kb = 64;
	double zipf_s = 1.2, rate = 0, shift_after = 0, duration = 0;
	const char *mode = "zipf", *adv = "none", *late = "none", *out = "/run/graded.json", *logp = NULL, *oracle = NULL;
	int daemonize = 0, do_write = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && ++i)
		if (OPT("--mode")) mode = v;
		else if (OPT("--size-mb")) size_mb = strtoul(v, 0, 0);
		else if (OPT("--cold-mb")) cold_mb = strtoul(v, 0, 0);
		else if (OPT("--hot-mb")) hot_mb = strtoul(v, 0, 0);
		else if (OPT("--cold-stride-kb")) stride_kb = strtoul(v, 0, 0);
		else if (OPT("--zipf-s")) zipf_s = atof(v);
		else if (OPT("--rate")) rate = atof(v);
		else if (OPT("--shift-after")) shift_after = atof(v);
		else if (OPT("--duration")) duration = atof(v);
		else if (OPT("--madvise")) adv = v;
		else if (OPT("--late-madvise")) late = v;
		else if (OPT("--oracle")) oracle = v;
		else if (OPT("--out")) out = v;
		else if (OPT("--log")) logp = v;
		else if (OPT("--seed")) rng_state = strtoull(v, 0, 0) | 1;
		else if (!strcmp(a, "--daemonize")) daemonize = 1;
		else if (!strcmp(a, "--write")) do_write = 1;
		else { fprintf(stderr, "graded: bad argument '%s' (see the header of graded.c)\n", a); return 2; }
	}
	int behind = !strcmp(mode, "behind");
	if (!behind && strcmp(mode, "zipf")) { fprintf(stderr, "graded: --mode zipf|behind\n"); return 2; }
	unsigned long bytes = (behind ? cold_mb + hot_mb : size_mb) << 20;
	unsigned long chunks = bytes / HUGE, cold_chunks = behind ? (cold_mb << 20) / HUGE : 0;
	if (!chunks || chunks == cold_chunks) { fprintf(stderr, "graded: nothing to access\n"); return 2; }
	char *raw = mmap(NULL, bytes + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED) { perror("graded: mmap"); return 1; }
	char *base = (char *)(((unsigned long)raw + HUGE - 1) & ~(HUGE - 1));
	if (strcmp(adv, "none") && madvise(base, bytes, !strcmp(adv, "hugepage") ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)) {
		perror("graded: madvise");
		return 1;
	}

	int ready_fd = -1;
	if (daemonize && daemon_fork("graded: fork", &ready_fd)) return 1;

	/* populate */
	for (unsigned long off = 0; off < cold_chunks * HUGE; off += stride_kb << 10) base[off] = 1;
	for (unsigned long off = cold_chunks * HUGE; off < bytes; off += PAGE) base[off] = 1;
	if (!strcmp(late, "hugepage") && madvise(base, bytes, MADV_HUGEPAGE)) { perror("graded: madvise"); return 1; }

	/* the access distribution: rank -> chunk per phase, and the cdf over ranks */
	unsigned long active = chunks - cold_chunks;
	unsigned *order[PHASES];
	double *cdf = malloc(active * sizeof(*cdf)), sum = 0;
	for (int p = 0; p < PHASES; p++) {
		order[p] = malloc(active * sizeof(unsigned));
		if (!order[p] || !cdf) { perror("graded: malloc"); return 1; }
		if (behind)
			for (unsigned long r = 0; r < active; r++) order[p][r] = cold_chunks + r;
		else
			shuffle(order[p], active);
	}
	for (unsigned long r = 0; r < active; r++) cdf[r] = (sum += behind ? 1.0 : pow(r + 1, -zipf_s));
	for (unsigned long r = 0; r < active; r++) cdf[r] /= sum;

	catch_stop_signals();
	FILE *log = NULL;
	if (logp && !(log = fopen(logp, "w"))) { fprintf(stderr, "graded: %s: %s\n", logp, strerror(errno)); return 1; }
	if (log) setvbuf(log, NULL, _IOLBF, 0);
	if (oracle && oracle_collapse(oracle, 0, base, chunks)) return 1;

	double t0 = now();
	size_t cap = 64 + 12UL * PHASES * active, n = 0;
	char *json = malloc(cap + 1024);
	if (!json) { perror("graded: malloc"); return 1; }
	n += sprintf(json + n, "{\"pid\": %d, \"t0\": %.6f, \"mode\": \"%s\", \"start\": %lu, \"end\": %lu, "
		     "\"chunks\": %lu, \"cold_chunks\": %lu, \"zipf_s\": %g, \"rate\": %g, \"shift_after\": %g, "
		     "\"duration\": %g, \"madvise\": \"%s\", \"late_madvise\": \"%s\", \"write\": %s, \"order\": [",
		     getpid(), t0, mode, (unsigned long)base, (unsigned long)base + bytes, chunks, cold_chunks,
		     zipf_s, rate, shift_after, duration, adv, late, do_write ? "true" : "false");
	for (int p = 0; p < PHASES; p++) {
		n += sprintf(json + n, "%s[", p ? ", " : "");
		for (unsigned long r = 0; r < active; r++) n += sprintf(json + n, "%s%u", r ? "," : "", order[p][r]);
		n += sprintf(json + n, "]");
	}
	n += sprintf(json + n, "]}\n");
	if (write_atomic("graded", out, json, n)) return 1;
	free(json);
	if (daemonize && daemon_ready(ready_fd)) return 1;

	int phase = 0;
	unsigned long done = 0, window = 0;
	unsigned long acc = 0;
	double last = t0;
	while (!stop_flag) {
		for (int i = 0; i < 256; i++) {
			char *page = base + order[phase][pick(cdf, active, unit())] * HUGE + (rnd() % (HUGE / PAGE)) * PAGE;
			volatile unsigned long *line = (volatile unsigned long *)(page + (rnd() % (PAGE / LINE)) * LINE);
			acc += *line;
			if (do_write) *line += 1;
		}
		done += 256;
		window += 256;
		double t = now();
		if (rate > 0 && done > rate * (t - t0)) {
			struct timespec ts = { 0, (long)((done / rate - (t - t0)) * 1e9) };
			nanosleep(&ts, NULL);
			t = now();
		}
		if (t - last >= 1.0) {
			if (log) fprintf(log, "%.3f %.0f %d\n", t, window / (t - last), phase);
			window = 0;
			last = t;
		}
		if (duration > 0 && t - t0 >= duration) break;
		if (!phase && shift_after > 0 && t - t0 >= shift_after) {
			phase = 1;
			if (log) fprintf(log, "# shift %.6f\n", t);
			if (oracle && oracle_collapse(oracle, 1, base, chunks)) return 1;
		}
	}
	if (log) { fprintf(log, "# end %.6f %lu\n", now(), acc & 1); fclose(log); }
	return 0;
}
