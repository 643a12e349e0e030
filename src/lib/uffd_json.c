// SPDX-License-Identifier: MIT
/*
 * The handshake of Firecracker's userfaultfd handler protocol: a JSON array
 * of GuestRegionUffdMapping objects, parsed into snapfs_uffd_region and
 * checked (alignment, sizes, overlaps) before any page is served. The
 * parser knows just enough JSON for that: objects of whole numbers, with
 * other values (strings, booleans, null, nested arrays and objects)
 * skipped so that a newer VMM's extra fields do no harm.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "snapfs.h"

/* Most regions a handshake may hold (Firecracker sends a few). */
#define REGIONS_MAX 4096
/* Deepest nesting of a skipped value. */
#define DEPTH_MAX 32
/* Largest page size taken: 1 GiB huge pages. */
#define PAGE_SIZE_MAX ((uint64_t)1 << 30)

struct parser {
	const char *p, *end, *start;
};

static int bad(const struct parser *ps, const char *what)
{
	return error_set(-EPROTO, "uffd handshake: byte %zu: %s",
			 (size_t)(ps->p - ps->start), what);
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' ||
				   *ps->p == '\r'))
		ps->p++;
}

/* Consume c (after white space), or fail. */
static int expect(struct parser *ps, char c, const char *what)
{
	skip_ws(ps);
	if (ps->p >= ps->end || *ps->p != c)
		return bad(ps, what);
	ps->p++;
	return 0;
}

/* A string; its text (escapes left as they are) in *ret_s, *ret_len. */
static int parse_string(struct parser *ps, const char **ret_s, size_t *ret_len)
{
	const char *s;

	if (expect(ps, '"', "expected a string") < 0)
		return -EPROTO;
	s = ps->p;
	while (ps->p < ps->end && *ps->p != '"') {
		if ((unsigned char)*ps->p < 0x20)
			return bad(ps, "control character in a string");
		if (*ps->p == '\\' && ++ps->p >= ps->end)
			break;
		ps->p++;
	}
	if (ps->p >= ps->end)
		return bad(ps, "unterminated string");
	*ret_s = s;
	*ret_len = (size_t)(ps->p - s);
	ps->p++;
	return 0;
}

/* A whole number 0..UINT64_MAX (no sign, fraction or exponent). */
static int parse_u64(struct parser *ps, uint64_t *ret)
{
	uint64_t v = 0;
	const char *s;

	skip_ws(ps);
	s = ps->p;
	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
		unsigned d = (unsigned)(*ps->p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return bad(ps, "number too large");
		v = v * 10 + d;
		ps->p++;
	}
	if (ps->p == s)
		return bad(ps, "expected a whole number");
	if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E'))
		return bad(ps, "expected a whole number");
	*ret = v;
	return 0;
}

/* Any value, skipped. */
static int skip_value(struct parser *ps, int depth)
{
	const char *s;
	size_t n;

	if (depth > DEPTH_MAX)
		return bad(ps, "nested too deep");
	skip_ws(ps);
	if (ps->p >= ps->end)
		return bad(ps, "expected a value");
	switch (*ps->p) {
	case '"':
		return parse_string(ps, &s, &n);
	case '[':
	case '{': {
		char close = *ps->p == '[' ? ']' : '}';
		bool object = close == '}';

		ps->p++;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			return 0;
		}
		for (;;) {
			if (object && (parse_string(ps, &s, &n) < 0 ||
				       expect(ps, ':', "expected ':'") < 0))
				return -EPROTO;
			if (skip_value(ps, depth + 1) < 0)
				return -EPROTO;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == ',') {
				ps->p++;
				continue;
			}
			return expect(ps, close, object ? "expected ',' or '}'" :
				      "expected ',' or ']'");
		}
	}
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
			if (*ps->p == '-')
				ps->p++;
			while (ps->p < ps->end && strchr("0123456789.eE+-", *ps->p))
				ps->p++;
			return 0;
		}
		for (size_t i = 0; i < 3; i++) {
			static const char *const words[] = { "true", "false", "null" };
			size_t len = strlen(words[i]);

			if ((size_t)(ps->end - ps->p) >= len && memcmp(ps->p, words[i], len) == 0) {
				ps->p += len;
				return 0;
			}
		}
		return bad(ps, "expected a value");
	}
}

enum { F_BASE = 1, F_SIZE = 2, F_OFFSET = 4, F_PAGE = 8, F_PAGE_KIB = 16 };

static int parse_region(struct parser *ps, struct snapfs_uffd_region *r)
{
	static const struct {
		const char *name;
		unsigned flag;
	} keys[] = {
		{ "base_host_virt_addr", F_BASE }, { "size", F_SIZE }, { "offset", F_OFFSET },
		{ "page_size", F_PAGE }, { "page_size_kib", F_PAGE_KIB },
	};
	uint64_t page = 0, page_kib = 0;
	unsigned seen = 0;

	if (expect(ps, '{', "expected '{' (a region)") < 0)
		return -EPROTO;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}')
		return bad(ps, "empty region");
	for (;;) {
		const char *key;
		size_t klen, k;
		uint64_t v = 0;

		if (parse_string(ps, &key, &klen) < 0 || expect(ps, ':', "expected ':'") < 0)
			return -EPROTO;
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (strlen(keys[k].name) == klen && memcmp(keys[k].name, key, klen) == 0)
				break;
		if (k == sizeof(keys) / sizeof(keys[0])) {
			if (skip_value(ps, 1) < 0)
				return -EPROTO;
		} else {
			if (seen & keys[k].flag)
				return bad(ps, "a key given twice");
			if (parse_u64(ps, &v) < 0)
				return -EPROTO;
			seen |= keys[k].flag;
			switch (keys[k].flag) {
			case F_BASE: r->base = v; break;
			case F_SIZE: r->size = v; break;
			case F_OFFSET: r->offset = v; break;
			case F_PAGE: page = v; break;
			default: page_kib = v; break;
			}
		}
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (expect(ps, '}', "expected ',' or '}'") < 0)
			return -EPROTO;
		break;
	}
	if ((seen & (F_BASE | F_SIZE | F_OFFSET)) != (F_BASE | F_SIZE | F_OFFSET))
		return bad(ps, "region without base_host_virt_addr, size or offset");
	if (!(seen & (F_PAGE | F_PAGE_KIB)))
		return bad(ps, "region without page_size or page_size_kib");
	/* Firecracker's page_size_kib holds bytes; a small value is KiB. */
	if ((seen & F_PAGE_KIB) && page_kib < SNAPFS_PAGE_SIZE && page_kib <= PAGE_SIZE_MAX >> 10)
		page_kib <<= 10;
	if ((seen & F_PAGE) && (seen & F_PAGE_KIB) && page != page_kib)
		return bad(ps, "page_size and page_size_kib disagree");
	r->page_size = (seen & F_PAGE) ? page : page_kib;
	return 0;
}

static int region_by_base(const void *a, const void *b)
{
	const struct snapfs_uffd_region *x = a, *y = b;

	return x->base < y->base ? -1 : x->base > y->base;
}

/* Alignment, sizes and overlaps of regions (sorted by base). */
static int regions_check(const struct snapfs_uffd_region *r, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		uint64_t ps = r[i].page_size;

		if (ps < SNAPFS_PAGE_SIZE || ps > PAGE_SIZE_MAX || (ps & (ps - 1)))
			return error_set(-EPROTO, "uffd handshake: region %zu: page size %llu is "
					 "not a power of two from 4096 to 1 GiB", i,
					 (unsigned long long)ps);
		if (r[i].size == 0 || r[i].size % ps || r[i].base % ps ||
		    r[i].offset % SNAPFS_PAGE_SIZE)
			return error_set(-EPROTO, "uffd handshake: region %zu (0x%llx, %llu "
					 "bytes at offset 0x%llx): not aligned to its page size "
					 "%llu", i, (unsigned long long)r[i].base,
					 (unsigned long long)r[i].size,
					 (unsigned long long)r[i].offset, (unsigned long long)ps);
		if (r[i].base + r[i].size < r[i].base || r[i].offset + r[i].size < r[i].offset)
			return error_set(-EPROTO, "uffd handshake: region %zu: wraps around", i);
		if (i > 0 && r[i - 1].base + r[i - 1].size > r[i].base)
			return error_set(-EPROTO, "uffd handshake: regions at 0x%llx and 0x%llx "
					 "overlap", (unsigned long long)r[i - 1].base,
					 (unsigned long long)r[i].base);
	}
	return 0;
}

int snapfs_uffd_parse_regions(const char *text, size_t len,
			      struct snapfs_uffd_region **ret_regions, size_t *ret_count)
{
	struct parser ps = { text, text + len, text };
	struct snapfs_uffd_region *r = NULL;
	size_t n = 0, cap = 0;
	int rc;

	error_clear();
	if (expect(&ps, '[', "expected '[' (an array of regions)") < 0)
		return -EPROTO;
	skip_ws(&ps);
	if (ps.p < ps.end && *ps.p == ']')
		return bad(&ps, "no regions");
	for (;;) {
		if (n == cap) {
			struct snapfs_uffd_region *grown;

			if (n == REGIONS_MAX) {
				rc = bad(&ps, "too many regions");
				goto out_free;
			}
			cap = cap ? cap * 2 : 4;
			grown = realloc(r, cap * sizeof(*r));
			if (!grown) {
				rc = -ENOMEM;
				goto out_free;
			}
			r = grown;
		}
		memset(&r[n], 0, sizeof(r[n]));
		rc = parse_region(&ps, &r[n]);
		if (rc < 0)
			goto out_free;
		n++;
		skip_ws(&ps);
		if (ps.p < ps.end && *ps.p == ',') {
			ps.p++;
			continue;
		}
		rc = expect(&ps, ']', "expected ',' or ']'");
		if (rc < 0)
			goto out_free;
		break;
	}
	skip_ws(&ps);
	/* Firecracker's message ends with the array (a NUL is tolerated). */
	while (ps.p < ps.end && *ps.p == '\0')
		ps.p++;
	if (ps.p != ps.end) {
		rc = bad(&ps, "text after the array");
		goto out_free;
	}
	qsort(r, n, sizeof(*r), region_by_base);
	rc = regions_check(r, n);
	if (rc < 0)
		goto out_free;
	*ret_regions = r;
	*ret_count = n;
	return 0;

out_free:
	free(r);
	return rc;
}
