/* SPDX-License-Identifier: GPL-3.0-or-later
 * chase: benchmark workload of linux_mm.damon (bench/).
 *
 * Private anonymous memory, 2 MiB aligned regions separated by 2 MiB PROT_NONE gaps:
 *   hot   dense; a random dependent pointer chase over its 64-byte lines (latency bound)
 *   hot2  dense; populated like hot, chased instead of hot after --shift-after S (0: never)
 *   cold  sparse; one 4 KiB page per --cold-stride-kb touched once, then never again
 * Every second it appends "epoch_s hops_per_s phase" to --log.  When populated it writes
 * the exact ranges (ground truth) as JSON to --out (atomically) and, with --daemonize,
 * only then returns in the parent.
 *
 * --madvise none|hugepage|nohugepage   madvise every region before first touch
 * --late-madvise hugepage              MADV_HUGEPAGE every region after populating
 * --oracle                             MADV_COLLAPSE exactly the current hot range (at start and at the shift)
 * --write                              the chase also increments a counter in each visited line
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#define HUGE (2UL << 20)
#define LINE 64UL

struct node { struct node *next; unsigned long count; char pad[LINE - 16]; };

/* One random cycle over all lines of [p, p+bytes). */
static struct node *build_ring(char *p, unsigned long bytes)
{
	unsigned long n = bytes / LINE;
	unsigned int *perm = malloc(n * sizeof(*perm));
	if (!perm) { perror("chase: malloc"); exit(1); }
	for (unsigned long i = 0; i < n; i++) perm[i] = i;
	for (unsigned long i = n - 1; i > 0; i--) {
		unsigned long j = rnd() % (i + 1);
		unsigned int t = perm[i]; perm[i] = perm[j]; perm[j] = t;
	}
	for (unsigned long i = 0; i < n; i++) {
		struct node *a = (struct node *)(p + perm[i] * LINE);
		a->next = (struct node *)(p + perm[(i + 1) % n] * LINE);
		a->count = 0;
	}
	struct node *head = (struct node *)(p + perm[0] * LINE);
	free(perm);
	return head;
}

static void range_json(char *buf, size_t sz, const char *name, char *p, unsigned long bytes)
{
	snprintf(buf, sz, "\"%s\": {\"start\": %lu, \"end\": %lu, \"start_hex\": \"0x%lx\", \"end_hex\": \"0x%lx\", \"bytes\": %lu}",
		 name, (unsigned long)p, (unsigned long)p + bytes, (unsigned long)p, (unsigned long)p + bytes, bytes);
}

static int advise_all(char **ps, unsigned long *sz, int n, int advice)
{
	for (int i = 0; i < n; i++)
		if (sz[i] && madvise(ps[i], sz[i], advice)) { perror("chase: madvise"); return -1; }
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long hot_mb = 64, hot2_mb = 64, cold_mb = 256, stride_kb = 64;
	double shift_after = 0, duration = 0;
	const char *adv = "none", *late = "none", *out = "/run/chase.json", *logp = NULL;
	int daemonize = 0, oracle = 0, do_write = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && ++i)
		if (OPT("--hot-mb")) hot_mb = strtoul(v, 0, 0);
		else if (OPT("--hot2-mb")) hot2_mb = strtoul(v, 0, 0);
		else if (OPT("--cold-mb")) cold_mb = strtoul(v, 0, 0);
		else if (OPT("--cold-stride-kb")) stride_kb = strtoul(v, 0, 0);
		else if (OPT("--shift-after")) shift_after = atof(v);
		else if (OPT("--duration")) duration = atof(v);
		else if (OPT("--madvise")) adv = v;
		else if (OPT("--late-madvise")) late = v;
		else if (OPT("--out")) out = v;
		else if (OPT("--log")) logp = v;
		else if (OPT("--seed")) rng_state = strtoull(v, 0, 0) | 1;
		else if (!strcmp(a, "--daemonize")) daemonize = 1;
		else if (!strcmp(a, "--oracle")) oracle = 1;
		else if (!strcmp(a, "--write")) do_write = 1;
		else { fprintf(stderr, "chase: bad argument '%s' (see the header of chase.c)\n", a); return 2; }
	}
	int advice = !strcmp(adv, "hugepage") ? MADV_HUGEPAGE : !strcmp(adv, "nohugepage") ? MADV_NOHUGEPAGE : -1;
	int late_advice = !strcmp(late, "hugepage") ? MADV_HUGEPAGE : -1;
	unsigned long sz[3] = { hot_mb << 20, hot2_mb << 20, cold_mb << 20 };
	unsigned long total = HUGE; /* leading gap */
	for (int i = 0; i < 3; i++) total += sz[i] + HUGE;
	char *base = mmap(NULL, total + HUGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) { perror("chase: mmap"); return 1; }
	char *cur = (char *)(((unsigned long)base + HUGE - 1) & ~(HUGE - 1)) + HUGE;
	char *ps[3];
	for (int i = 0; i < 3; i++) {
		ps[i] = cur;
		if (sz[i] && mprotect(cur, sz[i], PROT_READ | PROT_WRITE)) { perror("chase: mprotect"); return 1; }
		cur += sz[i] + HUGE;
	}
	if (advice >= 0 && advise_all(ps, sz, 3, advice)) return 1;

	int ready_fd = -1;
	if (daemonize && daemon_fork("chase: fork", &ready_fd)) return 1;

	/* populate: cold sparsely, hot and hot2 densely (their rings live in their lines) */
	for (unsigned long off = 0; off < sz[2]; off += stride_kb << 10) ps[2][off] = 1;
	struct node *ring[2] = { build_ring(ps[0], sz[0]), sz[1] ? build_ring(ps[1], sz[1]) : NULL };
	if (late_advice >= 0 && advise_all(ps, sz, 3, late_advice)) return 1;
	int phase = 0;
	double collapse_s = 0;
	if (oracle) {
		double t = now();
		if (madvise(ps[0], sz[0], MADV_COLLAPSE)) perror("chase: MADV_COLLAPSE");
		collapse_s = now() - t;
	}

	catch_stop_signals();

	FILE *log = NULL;
	if (logp && !(log = fopen(logp, "w"))) { fprintf(stderr, "chase: %s: %s\n", logp, strerror(errno)); return 1; }
	if (log) setvbuf(log, NULL, _IOLBF, 0);

	double t0 = now();
	char json[2048], r0[256], r1[256], r2[256];
	range_json(r0, sizeof(r0), "hot", ps[0], sz[0]);
	range_json(r1, sizeof(r1), "hot2", ps[1], sz[1]);
	range_json(r2, sizeof(r2), "cold", ps[2], sz[2]);
	int n = snprintf(json, sizeof(json),
		"{\"pid\": %d, \"t0\": %.6f, \"shift_after\": %g, \"duration\": %g, \"madvise\": \"%s\", "
		"\"late_madvise\": \"%s\", \"oracle\": %s, \"write\": %s, \"oracle_collapse_s\": %.6f, "
		"\"cold_stride_kb\": %lu, \"line\": %lu, %s, %s, %s}\n",
		getpid(), t0, shift_after, duration, adv, late, oracle ? "true" : "false", do_write ? "true" : "false",
		collapse_s, stride_kb, LINE, r0, r1, r2);
	if (write_atomic("chase", out, json, n)) return 1;
	if (daemonize) {
		if (daemon_ready(ready_fd)) return 1;
	} else {
		fputs(json, stdout);
		fflush(stdout);
	}

	struct node *p = ring[0];
	unsigned long hops = 0, sum = 0;
	double last = t0;
	for (;;) {
		if (do_write)
			for (int i = 0; i < 4096; i++) { p->count++; p = p->next; }
		else
			for (int i = 0; i < 4096; i++) p = p->next;
		hops += 4096;
		if ((hops & 0xffff) == 0 || stop_flag) {
			double t = now();
			if (t - last >= 1.0 || stop_flag) {
				if (log) fprintf(log, "%.3f %.0f %d\n", t, hops / (t - last), phase);
				hops = 0;
				last = t;
			}
			if (stop_flag || (duration > 0 && t - t0 >= duration)) break;
			if (!phase && shift_after > 0 && t - t0 >= shift_after && ring[1]) {
				phase = 1;
				p = ring[1];
				if (log) fprintf(log, "# shift %.6f\n", t);
				if (oracle && madvise(ps[1], sz[1], MADV_COLLAPSE)) perror("chase: MADV_COLLAPSE");
			}
		}
	}
	sum = (unsigned long)p;
	if (log) { fprintf(log, "# end %.6f %lu\n", now(), sum & 1); fclose(log); }
	return 0;
}
