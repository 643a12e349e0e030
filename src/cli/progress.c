// SPDX-License-Identifier: MIT
/*
 * A one-line progress bar: bytes done / total, rate, time left, redrawn at
 * most ten times a second.
 */
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct progress_bar {
	bool active;
	const char *label;
	double started, last_draw;
	bool drawn;
};

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct progress_bar *progress_bar_new(const char *label, bool quiet)
{
	struct progress_bar *bar = calloc(1, sizeof(*bar));

	if (!bar)
		return NULL;
	bar->active = !quiet && isatty(STDERR_FILENO);
	bar->label = label;
	bar->started = now_seconds();
	return bar;
}

static void human(char *buf, size_t cap, double bytes)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (bytes >= 1024 && u < 4) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

void progress_bar_update(void *data, uint64_t done, uint64_t total)
{
	struct progress_bar *bar = data;
	char d[32], t[32], r[32], eta[32] = "--:--";
	double now, elapsed, rate, frac;
	int filled;

	if (!bar || !bar->active)
		return;
	now = now_seconds();
	if (bar->drawn && now - bar->last_draw < 0.1 && done < total)
		return;
	bar->last_draw = now;
	bar->drawn = true;
	elapsed = now - bar->started;
	rate = elapsed > 0 ? (double)done / elapsed : 0;
	frac = total ? (double)done / (double)total : 1;
	if (frac > 1)
		frac = 1;
	filled = (int)(frac * 24);
	human(d, sizeof(d), (double)done);
	human(t, sizeof(t), (double)total);
	human(r, sizeof(r), rate);
	if (rate > 0 && total > done) {
		long left = (long)((double)(total - done) / rate);

		snprintf(eta, sizeof(eta), "%ld:%02ld", left / 60, left % 60);
	} else if (total <= done) {
		snprintf(eta, sizeof(eta), "0:00");
	}
	fprintf(stderr, "\r%s [%.*s%*s] %3d%%  %s / %s  %s/s  left %s\033[K",
		bar->label, filled, "########################", 24 - filled, "",
		(int)(frac * 100), d, t, r, eta);
	fflush(stderr);
}

void progress_bar_free(struct progress_bar *bar)
{
	if (!bar)
		return;
	if (bar->active && bar->drawn) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
	}
	free(bar);
}
