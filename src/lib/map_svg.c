// SPDX-License-Identifier: MIT
/*
 * The SVG of `snapfs map`: one strip across the picture, in which the
 * segments of a snapshot are laid out in address order. Bytes in use
 * (segments) are drawn to scale; a gap between segments larger than
 * FOLD_SHARE of the bytes in use is folded into a narrow marked break, so
 * that a 128 TiB process address space and a 64 GiB VM both show their
 * used parts. Fill colour says the segment's kind, its shade the page
 * state (stored, stored and shared with the parent, zero, not committed);
 * a band above the strip marks pages changed against another snapshot.
 * Labels come from segment labels, which are untrusted text: every byte of
 * them goes through svg_text() (XML escaping, UTF-8 checking).
 */
#include "map_svg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH 1200.0          /* picture width in px */
#define MARGIN 20.0
#define STRIP_W (WIDTH - 2 * MARGIN)
#define STRIP_Y 70.0          /* top of the strip */
#define STRIP_H 60.0
#define MARK_H 8.0            /* changed-against band above the strip */
#define FONT_W 6.6            /* px per character of 11px monospace */
#define FOLD_SHARE 0.03       /* gaps above this share of used bytes fold */
#define BREAK_SHARE 0.015     /* width of a fold, as a share of used bytes */
#define BREAKS_MAX_SHARE 0.25 /* all folds together at most this share */

int map_ranges_add(struct map_ranges *ranges, uint64_t start, uint64_t end)
{
	if (start >= end)
		return 0;
	if (ranges->count && ranges->r[ranges->count - 1].end >= start) {
		if (end > ranges->r[ranges->count - 1].end)
			ranges->r[ranges->count - 1].end = end;
		return 0;
	}
	if (ranges->count == ranges->cap) {
		size_t cap = ranges->cap ? ranges->cap * 2 : 64;
		struct map_range *r = realloc(ranges->r, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		ranges->r = r;
		ranges->cap = cap;
	}
	ranges->r[ranges->count++] = (struct map_range){ start, end };
	return 0;
}

void map_ranges_release(struct map_ranges *ranges)
{
	if (!ranges)
		return;
	free(ranges->r);
	*ranges = (struct map_ranges){ 0 };
}

/* Index of the first range that ends after off. */
static size_t ranges_find(const struct map_ranges *ranges, uint64_t off)
{
	size_t lo = 0, hi = ranges->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ranges->r[mid].end <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Whether offset lies in one of ranges (NULL: no). */
static bool ranges_hold(const struct map_ranges *ranges, uint64_t off)
{
	size_t i;

	if (!ranges)
		return false;
	i = ranges_find(ranges, off);
	return i < ranges->count && ranges->r[i].start <= off;
}

/* How many ranges overlap [start, end). */
static size_t ranges_overlapping(const struct map_ranges *ranges, uint64_t start, uint64_t end)
{
	if (!ranges)
		return 0;
	return ranges_find(ranges, end > 0 ? end - 1 : 0) - ranges_find(ranges, start) + 1;
}

/* Appends to bounds every boundary of ranges inside (start, end). */
static void ranges_cuts(const struct map_ranges *ranges, uint64_t start, uint64_t end,
			uint64_t *bounds, size_t *n, size_t cap)
{
	if (!ranges)
		return;
	for (size_t i = ranges_find(ranges, start); i < ranges->count && *n + 2 <= cap; i++) {
		if (ranges->r[i].start >= end)
			break;
		if (ranges->r[i].start > start)
			bounds[(*n)++] = ranges->r[i].start;
		if (ranges->r[i].end < end)
			bounds[(*n)++] = ranges->r[i].end;
	}
}

/* --- colours ---------------------------------------------------------------- */

static const struct kind_colour {
	const char *kind;
	unsigned rgb;
} kinds[] = {
	{ "system", 0x76b7b2 },   { "anonymous", 0x4e79a7 }, { "pagecache", 0xf28e2b },
	{ "tmpfs", 0x59a14f },    { "ramdiskfs", 0xb07aa1 }, { "mapped", 0xedc948 },
};
#define OTHER_RGB 0x9c755f
#define CHANGED_RGB 0xe15759
#define SHARED_MARK_RGB 0x222222

enum page_state { ST_STORED, ST_SHARED, ST_ZERO, ST_UNCOMMITTED, ST_COUNT };
static const char *const state_names[ST_COUNT] = {
	"stored", "stored, shared with the parent", "zero (committed, nothing stored)",
	"not committed",
};

#define KIND_COUNT (sizeof(kinds) / sizeof(kinds[0]))

/* Index of kind in kinds[], KIND_COUNT for any other. */
static size_t kind_index(const char *kind)
{
	for (size_t i = 0; i < KIND_COUNT; i++)
		if (strcmp(kinds[i].kind, kind) == 0)
			return i;
	return KIND_COUNT;
}

static unsigned kind_rgb_at(size_t k)
{
	return k < KIND_COUNT ? kinds[k].rgb : OTHER_RGB;
}

static unsigned kind_rgb(const char *kind)
{
	return kind_rgb_at(kind_index(kind));
}

/* rgb mixed toward white (t > 0) or black (t < 0) by |t|. */
static unsigned shade(unsigned rgb, double t)
{
	unsigned out = 0;

	for (int s = 16; s >= 0; s -= 8) {
		double c = (rgb >> s) & 0xff;

		c = t >= 0 ? c + (255 - c) * t : c * (1 + t);
		out |= (unsigned)(c + 0.5) << s;
	}
	return out;
}

static unsigned state_rgb(unsigned rgb, enum page_state st)
{
	switch (st) {
	case ST_SHARED:
		return shade(rgb, -0.45);
	case ST_ZERO:
		return shade(rgb, 0.6);
	case ST_UNCOMMITTED:
		return shade(rgb, 0.88);
	default:
		return rgb;
	}
}

/* --- text ------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* Characters in text (invalid bytes count one each). */
static size_t text_chars(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t n = strlen(text), chars = 0;

	for (size_t i = 0; i < n; chars++) {
		size_t l = utf8_len(s + i, n - i);

		i += l ? l : 1;
	}
	return chars;
}

/* Write the first max_chars characters of text as XML character data or
 * attribute text: & < > " ' escaped, control characters and bytes that are
 * not UTF-8 written as '?', "…" at the end if text was cut. */
static void svg_text(FILE *out, const char *text, size_t max_chars)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t n = strlen(text), chars = 0, i = 0;
	bool cut = text_chars(text) > max_chars;

	if (cut && max_chars)
		max_chars--;
	while (i < n && chars < max_chars) {
		size_t l = utf8_len(s + i, n - i);

		if (l == 0 || s[i] < 0x20 || s[i] == 0x7f) {
			fputc('?', out);
			l = l ? l : 1;
		} else if (s[i] == '&') {
			fputs("&amp;", out);
		} else if (s[i] == '<') {
			fputs("&lt;", out);
		} else if (s[i] == '>') {
			fputs("&gt;", out);
		} else if (s[i] == '"') {
			fputs("&quot;", out);
		} else if (s[i] == '\'') {
			fputs("&apos;", out);
		} else {
			fwrite(s + i, 1, l, out);
		}
		i += l;
		chars++;
	}
	if (cut)
		fputs("\xe2\x80\xa6", out);
}

static void human(char *buf, size_t cap, uint64_t bytes)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 6) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%" PRIu64 " B", bytes);
	else
		snprintf(buf, cap, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, units[u]);
}

/* --- layout ----------------------------------------------------------------- */

/* A stretch of the axis: bytes [start, end) drawn from x over w px, or a
 * fold (is_break) standing for the gap [start, end). */
struct stretch {
	uint64_t start, end;
	double x, w;
	bool is_break;
};

struct layout {
	struct stretch *s;
	size_t count;
};

static int layout_build(const struct map_model *m, struct layout *ret)
{
	struct stretch *s = calloc(2 * m->seg_count + 1, sizeof(*s));
	uint64_t used = 0, fold, brk, cur_s = 0, cur_e = 0;
	size_t n = 0, breaks = 0;
	double scale, x = MARGIN, units;

	if (!s)
		return -ENOMEM;
	/* Merge overlapping segments into used stretches, folding big gaps. */
	for (size_t i = 0; i < m->seg_count; i++)
		used += m->segs[i].end - m->segs[i].start;
	fold = (uint64_t)(used * FOLD_SHARE);
	for (size_t i = 0; i <= m->seg_count; i++) {
		bool last = i == m->seg_count;

		if (!last && n == 0 && cur_e == 0) {
			cur_s = m->segs[i].start;
			cur_e = m->segs[i].end;
			continue;
		}
		if (!last && m->segs[i].start <= cur_e + fold) {
			if (m->segs[i].end > cur_e)
				cur_e = m->segs[i].end;
			continue;
		}
		s[n++] = (struct stretch){ .start = cur_s, .end = cur_e };
		if (last)
			break;
		s[n++] = (struct stretch){ .start = cur_e, .end = m->segs[i].start, .is_break = true };
		breaks++;
		cur_s = m->segs[i].start;
		cur_e = m->segs[i].end;
	}
	/* Widths: used stretches to scale, folds a fixed share. */
	brk = (uint64_t)(used * BREAK_SHARE);
	if (breaks && brk * breaks > used * BREAKS_MAX_SHARE)
		brk = (uint64_t)(used * BREAKS_MAX_SHARE / breaks);
	units = 0;
	for (size_t i = 0; i < n; i++)
		units += s[i].is_break ? (double)brk : (double)(s[i].end - s[i].start);
	scale = units > 0 ? STRIP_W / units : 0;
	for (size_t i = 0; i < n; i++) {
		s[i].x = x;
		s[i].w = (s[i].is_break ? (double)brk : (double)(s[i].end - s[i].start)) * scale;
		x += s[i].w;
	}
	ret->s = s;
	ret->count = n;
	return 0;
}

/* x of byte offset off (inside some used stretch). */
static double layout_x(const struct layout *l, uint64_t off)
{
	for (size_t i = 0; i < l->count; i++) {
		const struct stretch *s = &l->s[i];

		if (s->is_break || off < s->start || off > s->end)
			continue;
		if (s->end == s->start)
			return s->x;
		return s->x + s->w * (double)(off - s->start) / (double)(s->end - s->start);
	}
	return MARGIN;
}

/* --- drawing ---------------------------------------------------------------- */

static enum page_state state_at(const struct map_model *m, const struct snapfs_segment *seg,
				uint64_t off)
{
	if (!seg->committed)
		return ST_UNCOMMITTED;
	if (!ranges_hold(m->data, off))
		return ST_ZERO;
	if (m->unshared && !ranges_hold(m->unshared, off))
		return ST_SHARED;
	return ST_STORED;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Pieces gathered into one rect until it is a pixel wide: a million
 * alternating pages or one-page segments make a few thousand rects, each
 * drawn in the kind and state that cover most of its width (white when
 * most of it is in no segment). */
struct pending {
	double x0, x1;
	double w[KIND_COUNT + 1][ST_COUNT];  /* px per kind and state */
	double none;                         /* px in no segment */
	bool changed;                        /* a page changed against OTHER */
	bool open;
};

static void pending_flush(FILE *out, struct pending *p)
{
	size_t bk = 0;
	int bs = 0;
	double w = p->x1 - p->x0;

	if (!p->open)
		return;
	for (size_t k = 0; k <= KIND_COUNT; k++)
		for (int st = 0; st < ST_COUNT; st++)
			if (p->w[k][st] > p->w[bk][bs]) {
				bk = k;
				bs = st;
			}
	if (p->w[bk][bs] >= p->none) {
		fprintf(out, "<rect x=\"%.3f\" y=\"%.1f\" width=\"%.3f\" height=\"%.1f\" "
			"fill=\"#%06x\"/>\n", p->x0, STRIP_Y, w, STRIP_H,
			state_rgb(kind_rgb_at(bk), bs));
		if (bs == ST_SHARED)
			fprintf(out, "<rect x=\"%.3f\" y=\"%.1f\" width=\"%.3f\" height=\"%.1f\" "
				"fill=\"#%06x\"/>\n", p->x0, STRIP_Y + STRIP_H, w, MARK_H / 2,
				SHARED_MARK_RGB);
	}
	/* A changed page is marked even when it is a sliver of the pixel. */
	if (p->changed)
		fprintf(out, "<rect x=\"%.3f\" y=\"%.1f\" width=\"%.3f\" height=\"%.1f\" "
			"fill=\"#%06x\"/>\n", p->x0, STRIP_Y - MARK_H - 1, w < 1 ? 1 : w, MARK_H,
			CHANGED_RGB);
	*p = (struct pending){ 0 };
}

/* Add [x0, x1) of kind k in state st; a piece that would make the
 * pending rect wider than a pixel, or that follows a fold, starts the
 * next one. */
static void pending_add(FILE *out, struct pending *p, double x0, double x1, size_t k,
			enum page_state st, bool changed)
{
	if (p->open && (x1 - p->x0 > 1.0 || x0 < p->x1))
		pending_flush(out, p);
	if (!p->open) {
		p->x0 = x0;
		p->open = true;
	} else {
		p->none += x0 - p->x1;
	}
	p->x1 = x1;
	p->w[k][st] += x1 - x0;
	p->changed |= changed;
}

/* The pieces of one segment: a rect per run of one state (merged per
 * pixel), a band above for runs changed against OTHER, a band below for
 * shared runs. A segment at least two pixels wide is a group of its own
 * with a title (its range, kind and whole label). */
static int draw_segment(FILE *out, const struct map_model *m, const struct layout *l,
			const struct snapfs_segment *seg, struct pending *p)
{
	size_t cap = 2, n = 0, k = kind_index(seg->kind);
	uint64_t *bounds;
	bool group = layout_x(l, seg->end) - layout_x(l, seg->start) >= 2.0;

	cap += 2 * (ranges_overlapping(m->data, seg->start, seg->end) +
		    ranges_overlapping(m->unshared, seg->start, seg->end) +
		    ranges_overlapping(m->changed, seg->start, seg->end));
	bounds = malloc(cap * sizeof(*bounds));
	if (!bounds)
		return -ENOMEM;
	bounds[n++] = seg->start;
	ranges_cuts(m->data, seg->start, seg->end, bounds, &n, cap);
	ranges_cuts(m->unshared, seg->start, seg->end, bounds, &n, cap);
	ranges_cuts(m->changed, seg->start, seg->end, bounds, &n, cap);
	bounds[n++] = seg->end;
	qsort(bounds, n, sizeof(*bounds), cmp_u64);
	if (group) {
		pending_flush(out, p);
		fprintf(out, "<g class=\"seg\"><title>0x%" PRIx64 "-0x%" PRIx64 " %s%s ",
			seg->start, seg->end, seg->kind, seg->committed ? "" : " (not committed)");
		svg_text(out, seg->label ? seg->label : "", 4096);
		fputs("</title>\n", out);
	}
	for (size_t i = 0; i + 1 < n; i++) {
		uint64_t a = bounds[i], b = bounds[i + 1];

		if (a < b)
			pending_add(out, p, layout_x(l, a), layout_x(l, b), k, state_at(m, seg, a),
				    ranges_hold(m->changed, a));
	}
	if (group) {
		pending_flush(out, p);
		fputs("</g>\n", out);
	}
	free(bounds);
	return 0;
}

static void draw_break(FILE *out, const struct stretch *s)
{
	char gap[32];
	double xm = s->x + s->w / 2;

	human(gap, sizeof(gap), s->end - s->start);
	fprintf(out, "<g class=\"fold\"><title>gap 0x%" PRIx64 "-0x%" PRIx64 " (%s) folded"
		"</title><rect x=\"%.3f\" y=\"%.1f\" width=\"%.3f\" height=\"%.1f\" "
		"fill=\"#ffffff\"/><path d=\"M%.2f %.1f l3 7.5 l-6 15 l6 15 l-6 15 l3 7.5\" "
		"stroke=\"#555555\" fill=\"none\" stroke-width=\"1.2\"/></g>\n",
		s->start, s->end, gap, s->x, STRIP_Y, s->w, STRIP_H, xm, STRIP_Y);
}

/* Labels of one lane: left to right, each at least 4 px after the one
 * before; a label that does not fit its segment is elided, and dropped
 * when fewer than 4 characters would remain. */
struct lane {
	double y, end;
};

static const char *short_label(const char *label)
{
	const char *slash = strrchr(label, '/');

	return slash && slash[1] ? slash + 1 : label;
}

static void draw_labels(FILE *out, const struct map_model *m, const struct layout *l)
{
	struct lane lanes[2] = { { STRIP_Y - MARK_H - 18, 0 }, { STRIP_Y - MARK_H - 4, 0 } };

	fputs("<g class=\"labels\" font-family=\"monospace\" font-size=\"11\" fill=\"#222222\">\n",
	      out);
	for (size_t i = 0; i < m->seg_count; i++) {
		const struct snapfs_segment *seg = &m->segs[i];
		const char *text;
		double x0, x1, room;
		size_t fit, want;
		struct lane *lane;
		uint64_t end = seg->end;

		if (!seg->label || !seg->label[0])
			continue;
		/* One label for a run of segments with the same label. */
		while (i + 1 < m->seg_count && m->segs[i + 1].label &&
		       strcmp(m->segs[i + 1].label, seg->label) == 0)
			end = m->segs[++i].end;
		text = short_label(seg->label);
		x0 = layout_x(l, seg->start);
		x1 = layout_x(l, end);
		lane = lanes[0].end <= lanes[1].end ? &lanes[0] : &lanes[1];
		if (x0 < lane->end)
			x0 = lane->end;
		room = (x1 > x0 ? x1 - x0 : 0);
		/* A label may run past its segment's end into empty room, up to
		 * 24 characters, when the segment is narrow. */
		want = text_chars(text);
		fit = (size_t)(room / FONT_W);
		if (fit < want && fit < 24)
			fit = want < 24 ? want : 24;
		if (fit < 4 && want >= 4)
			continue;
		if (x0 + (double)(fit < want ? fit : want) * FONT_W > MARGIN + STRIP_W)
			continue;
		fprintf(out, "<text x=\"%.2f\" y=\"%.1f\">", x0, lane->y);
		svg_text(out, text, fit);
		fputs("</text>\n", out);
		lane->end = x0 + (double)(fit < want ? fit : want) * FONT_W + 4;
	}
	fputs("</g>\n", out);
}

/* Addresses under the strip at the start of each used stretch, dropped
 * where they would overlap. */
static void draw_addresses(FILE *out, const struct layout *l)
{
	double end = 0;

	fputs("<g class=\"addresses\" font-family=\"monospace\" font-size=\"10\" "
	      "fill=\"#555555\">\n", out);
	for (size_t i = 0; i < l->count; i++) {
		char text[24];
		const struct stretch *s = &l->s[i];

		if (s->is_break)
			continue;
		snprintf(text, sizeof(text), "0x%" PRIx64, s->start);
		if (s->x < end || s->x + strlen(text) * 6.0 > WIDTH)
			continue;
		fprintf(out, "<text x=\"%.2f\" y=\"%.1f\">%s</text>\n", s->x,
			STRIP_Y + STRIP_H + MARK_H + 10, text);
		end = s->x + strlen(text) * 6.0 + 8;
	}
	fputs("</g>\n", out);
}

static void legend_box(FILE *out, double x, double y, unsigned rgb, const char *text)
{
	fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"14\" fill=\"#%06x\" "
		"stroke=\"#888888\" stroke-width=\"0.5\"/><text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
		x, y, rgb, x + 20, y + 11, text);
}

static void draw_legend(FILE *out, const struct map_model *m, double y)
{
	fputs("<g class=\"legend\" font-family=\"sans-serif\" font-size=\"12\" fill=\"#222222\">\n",
	      out);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		legend_box(out, MARGIN + i * 150.0, y, kinds[i].rgb, kinds[i].kind);
	y += 24;
	for (int st = 0, col = 0; st < ST_COUNT; st++) {
		if (st == ST_SHARED && !m->unshared)
			continue;
		legend_box(out, MARGIN + col++ * 270.0, y, state_rgb(kind_rgb("anonymous"), st),
			   state_names[st]);
	}
	y += 24;
	if (m->unshared)
		legend_box(out, MARGIN, y, SHARED_MARK_RGB, "band below: shared with the parent");
	if (m->changed) {
		fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"14\" fill=\"#%06x\"/>"
			"<text x=\"%.1f\" y=\"%.1f\">band above: changed against '", MARGIN + 400, y,
			CHANGED_RGB, MARGIN + 420, y + 11);
		svg_text(out, m->against, SNAPFS_NAME_MAX);
		fputs("'</text>\n", out);
	}
	fputs("</g>\n", out);
}

static uint64_t ranges_bytes(const struct map_ranges *r)
{
	uint64_t sum = 0;

	for (size_t i = 0; r && i < r->count; i++)
		sum += r->r[i].end - r->r[i].start;
	return sum;
}

static void draw_figures(FILE *out, const struct map_model *m, double y)
{
	char logical[32], committed[32], data[32], stored[32], shared[32];
	const struct snapfs_snapshot *s = m->snap;
	uint64_t data_bytes = ranges_bytes(m->data);

	human(logical, sizeof(logical), s->file_size);
	human(committed, sizeof(committed), s->committed_bytes);
	human(data, sizeof(data), s->data_bytes);
	human(stored, sizeof(stored), s->stored_bytes);
	fprintf(out, "<text class=\"figures\" x=\"%.1f\" y=\"%.1f\" font-family=\"sans-serif\" "
		"font-size=\"12\" fill=\"#222222\">logical %s, committed %s, data %s, stored %s "
		"(%.2fx)", MARGIN, y, logical, committed, data, stored,
		s->stored_bytes ? (double)s->data_bytes / (double)s->stored_bytes : 0.0);
	if (m->unshared) {
		uint64_t sh = data_bytes - ranges_bytes(m->unshared);

		human(shared, sizeof(shared), sh);
		fprintf(out, ", shared with the parent %s (%.0f%% of data)", shared,
			data_bytes ? 100.0 * (double)sh / (double)data_bytes : 0.0);
	}
	fputs("</text>\n", out);
}

int map_svg_write(FILE *out, const struct map_model *m)
{
	struct pending p = { 0 };
	struct layout l = { 0 };
	double height = STRIP_Y + STRIP_H + MARK_H + 134;
	int rc;

	rc = layout_build(m, &l);
	if (rc)
		return rc;
	fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
		"viewBox=\"0 0 %.0f %.0f\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n",
		WIDTH, height, WIDTH, height);
	fprintf(out, "<text x=\"%.1f\" y=\"22\" font-family=\"sans-serif\" font-size=\"15\" "
		"font-weight=\"bold\" fill=\"#222222\">", MARGIN);
	svg_text(out, m->snap->name, SNAPFS_NAME_MAX);
	if (m->snap->parent[0]) {
		fputs(" (parent ", out);
		svg_text(out, m->snap->parent, SNAPFS_NAME_MAX);
		fputc(')', out);
	}
	fputs("</text>\n", out);
	for (size_t i = 0; i < m->seg_count && !rc; i++)
		rc = draw_segment(out, m, &l, &m->segs[i], &p);
	pending_flush(out, &p);
	for (size_t i = 0; i < l.count && !rc; i++)
		if (l.s[i].is_break)
			draw_break(out, &l.s[i]);
	if (!rc) {
		draw_labels(out, m, &l);
		draw_addresses(out, &l);
		draw_legend(out, m, STRIP_Y + STRIP_H + MARK_H + 24);
		draw_figures(out, m, STRIP_Y + STRIP_H + MARK_H + 120);
		fputs("</svg>\n", out);
	}
	free(l.s);
	if (!rc && (fflush(out) || ferror(out)))
		rc = -EIO;
	return rc;
}
