// SPDX-License-Identifier: MIT
/*
 * Retention rules (snapfs prune): which snapshots a set of --keep-* rules
 * keeps, and why. Pure logic over a list of snapshots; store.c runs it and
 * the removals in one write transaction. The rules are those of restic's
 * forget (borg prune's periods): see prune.h and doc/snapfs.1.
 */
#include "prune.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"

int snapfs_duration_parse(const char *text, int64_t *ret_seconds)
{
	static const struct {
		char unit;
		int64_t seconds;
	} units[] = {
		{ 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 },
		{ 'm', 31 * 86400 }, { 'y', 365 * 86400 },
	};
	int64_t n = 0;
	const char *p = text;

	if (!text || *p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (*p - '0');
		if (n > SNAPFS_DURATION_MAX)
			return -EINVAL;
	}
	if (n == 0 || !p[0] || p[1])
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (units[i].unit == *p) {
			*ret_seconds = n * units[i].seconds;
			return 0;
		}
	}
	return -EINVAL;
}

/* created_at ("2026-11-30T08:00:00Z", maybe with a fraction or +00:00)
 * in seconds since the epoch; false if it is not such a time. */
static bool parse_created_at(const char *s, int64_t *ret)
{
	struct tm tm = { 0 };
	int used = 0;
	const char *rest;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6 || used != 19)
		return false;
	rest = s + used;
	if (*rest == '.')
		for (rest++; *rest >= '0' && *rest <= '9'; rest++)
			;
	if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0)
		return false;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ret = (int64_t)timegm(&tm);
	return true;
}

/* The period a time falls in, for a rule: the UTC hour, day, ISO week or
 * month, as text that differs between periods. */
static void period_key(int64_t t, int rule, char *buf, size_t cap)
{
	static const char *const formats[] = {
		[PRUNE_HOURLY] = "%Y-%m-%dT%H", [PRUNE_DAILY] = "%Y-%m-%d",
		[PRUNE_WEEKLY] = "%G-W%V", [PRUNE_MONTHLY] = "%Y-%m",
	};
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, cap, formats[rule], &tm);
}

static bool selected(const struct snapfs_prune_rules *r, const char *name)
{
	if (r->prefix && strncmp(name, r->prefix, strlen(r->prefix)) != 0)
		return false;
	if (r->glob && fnmatch(r->glob, name, 0) != 0)
		return false;
	return true;
}

/* Mark item kept and add "<what> #n" (n 0: "<what>") to its reasons. */
static void add_reason(struct snapfs_prune_item *item, const char *what, size_t n)
{
	size_t len = strlen(item->why);

	item->keep = true;
	if (n)
		snprintf(item->why + len, sizeof(item->why) - len, "%s%s #%zu",
			 len ? ", " : "", what, n);
	else
		snprintf(item->why + len, sizeof(item->why) - len, "%s%s",
			 len ? ", " : "", what);
}

/* Newest first: created_at, then id. Unreadable times sort first (kept). */
static int newest_first(const void *a, const void *b)
{
	const struct snapfs_prune_item *x = a, *y = b;

	if (x->readable != y->readable)
		return x->readable ? 1 : -1;
	if (x->time != y->time)
		return x->time > y->time ? -1 : 1;
	return (x->id < y->id) - (x->id > y->id);
}

static void apply_period(struct snapfs_prune_item *items, size_t count, int rule,
			 unsigned keep, const char *label)
{
	char last[32] = "", key[32];
	size_t kept = 0;

	for (size_t i = 0; i < count && kept < keep; i++) {
		if (!items[i].readable)
			continue;
		period_key(items[i].time, rule, key, sizeof(key));
		if (strcmp(key, last) == 0)
			continue;
		snprintf(last, sizeof(last), "%s", key);
		add_reason(&items[i], label, ++kept);
	}
}

int prune_plan(const struct snapfs_snapshot *snaps, size_t snap_count,
	       const struct snapfs_prune_rules *rules,
	       struct snapfs_prune_item **ret_items, size_t *ret_count)
{
	const unsigned periods[] = {
		[PRUNE_HOURLY] = rules->keep_hourly, [PRUNE_DAILY] = rules->keep_daily,
		[PRUNE_WEEKLY] = rules->keep_weekly, [PRUNE_MONTHLY] = rules->keep_monthly,
	};
	static const char *const labels[] = {
		[PRUNE_HOURLY] = "hourly", [PRUNE_DAILY] = "daily",
		[PRUNE_WEEKLY] = "weekly", [PRUNE_MONTHLY] = "monthly",
	};
	int64_t now = rules->now ? rules->now : (int64_t)time(NULL);
	struct snapfs_prune_item *items;
	size_t count = 0, last = 0;
	char within[64];

	items = calloc(snap_count ? snap_count : 1, sizeof(*items));
	if (!items)
		return -ENOMEM;
	for (size_t i = 0; i < snap_count; i++) {
		struct snapfs_prune_item *it = &items[count];

		if (!selected(rules, snaps[i].name))
			continue;
		snprintf(it->name, sizeof(it->name), "%s", snaps[i].name);
		snprintf(it->created_at, sizeof(it->created_at), "%s", snaps[i].created_at);
		it->id = snaps[i].id;
		it->readable = parse_created_at(snaps[i].created_at, &it->time);
		count++;
	}
	qsort(items, count, sizeof(*items), newest_first);
	snprintf(within, sizeof(within), "within %s",
		 rules->keep_within_text ? rules->keep_within_text : "");
	for (size_t i = 0; i < count; i++) {
		if (!items[i].readable) {
			add_reason(&items[i], "created_at unreadable", 0);
			continue;
		}
		if (last < rules->keep_last)
			add_reason(&items[i], "last", ++last);
		if (rules->keep_within && items[i].time >= now - rules->keep_within)
			add_reason(&items[i], within, 0);
	}
	for (int r = PRUNE_HOURLY; r <= PRUNE_MONTHLY; r++)
		if (periods[r])
			apply_period(items, count, r, periods[r], labels[r]);
	*ret_items = items;
	*ret_count = count;
	return 0;
}
