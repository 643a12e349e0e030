// SPDX-License-Identifier: MIT
/*
 * A one-line progress bar: done / total, and once they mean something
 * (MEANINGFUL_SECONDS after the first report, MEANINGFUL_FRACTION of the
 * work done) the rate and the time left; redrawn at most ten times a second; replaced at the
 * end by a one-line summary.
 */
#include "progress.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A rate needs a second of work behind it, an estimate 5 % of the job as
 * well: earlier figures are mostly start-up (opening, first reads). */
#define MEANINGFUL_SECONDS 1.0
#define MEANINGFUL_FRACTION 0.05

struct progress_bar {
	bool active;
	const char *label;
	const char *unit;      /* NULL: bytes */
	double started, last_draw;
	double base_time;      /* the first update: rates count from there */
	uint64_t base_done;
	bool based, drawn;
	uint64_t done, total;  /* the last update */
};

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct progress_bar *progress_bar_new(const char *label, const char *unit, bool quiet)
{
	struct progress_bar *bar = calloc(1, sizeof(*bar));

	if (!bar)
		return NULL;
	bar->active = !quiet && isatty(STDERR_FILENO);
	bar->label = label;
	bar->unit = unit;
	bar->started = now_seconds();
	return bar;
}

/* n in the bar's unit: "1.5 MiB", "1234 blobs". */
static void amount(const struct progress_bar *bar, char *buf, size_t cap, double n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	if (bar->unit) {
		snprintf(buf, cap, "%.0f %s", n, bar->unit);
		return;
	}
	while (n >= 1024 && u < 4) {
		n /= 1024;
		u++;
	}
	snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", n, units[u]);
}

void progress_bar_update(void *data, uint64_t done, uint64_t total)
{
	struct progress_bar *bar = data;
	char d[32], t[32], r[48] = "", eta[32] = "";
	double now, elapsed, frac;
	int filled;

	if (!bar || !bar->active)
		return;
	bar->done = done;
	bar->total = total;
	/* An empty job draws nothing. */
	if (total == 0)
		return;
	now = now_seconds();
	if (!bar->based) {
		/* Opening the store and the source is not the job's pace. */
		bar->based = true;
		bar->base_time = now;
		bar->base_done = done;
	}
	if (bar->drawn && now - bar->last_draw < 0.1 && done < total)
		return;
	bar->last_draw = now;
	bar->drawn = true;
	elapsed = now - bar->base_time;
	frac = (double)done / (double)total;
	if (frac > 1)
		frac = 1;
	filled = (int)(frac * 24);
	amount(bar, d, sizeof(d), (double)done);
	amount(bar, t, sizeof(t), (double)total);
	if (elapsed >= MEANINGFUL_SECONDS && done > bar->base_done) {
		double rate = (double)(done - bar->base_done) / elapsed;

		amount(bar, r, sizeof(r) - 4, rate);
		snprintf(r + strlen(r), 4, "/s");
		if (frac >= MEANINGFUL_FRACTION && done < total) {
			long left = (long)((double)(total - done) / rate);

			snprintf(eta, sizeof(eta), "  left %ld:%02ld", left / 60, left % 60);
		}
	}
	fprintf(stderr, "\r%s [%.*s%*s] %3d%%  %s / %s%s%s%s\033[K", bar->label, filled,
		"########################", 24 - filled, "", (int)(frac * 100), d, t,
		r[0] ? "  " : "", r, eta);
	fflush(stderr);
}

void progress_bar_end(struct progress_bar *bar, const char *what, bool ok)
{
	char d[32], r[48];
	double elapsed;

	if (!bar)
		return;
	if (bar->active && (bar->drawn || (ok && bar->total)))
		fputs("\r\033[K", stderr);
	if (bar->active && ok && bar->total) {
		elapsed = now_seconds() - bar->started;
		amount(bar, d, sizeof(d), (double)bar->done);
		if (elapsed >= 0.05) {
			amount(bar, r, sizeof(r), (double)bar->done / elapsed);
			fprintf(stderr, "%s: done, %s in %.1f s (%s/s)\n", what, d, elapsed, r);
		} else {
			fprintf(stderr, "%s: done, %s in %.1f s\n", what, d, elapsed);
		}
	}
	fflush(stderr);
	free(bar);
}
