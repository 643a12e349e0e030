// SPDX-License-Identifier: MIT
/*
 * gVisor's state encoding, decoded. Written from gVisor's own definition
 * at release 20221219 (Debian 12's golang-gvisor-gvisor-dev
 * 0.0~20221219.0, the same tree as runsc 20221219):
 *  - pkg/state/wire/wire.go: varint Uint (at most 10 bytes, the tenth at
 *    most 1), Int zigzag-encoded over Uint, Bool as Uint 1/0, floats as
 *    their bits, String a Uint length and bytes, Ref {root Uint, dot count,
 *    dots (Int >= 0 an index, < 0 the negated length of a field name and
 *    its bytes), a TypeSpec when there are dots}, Slice {length, capacity,
 *    Ref}, Array and Map (a count, then the first element tagged and the
 *    rest with the first one's kind, untagged), Struct {type ID, one
 *    tagged object: noObjects, multipleObjects or the single field},
 *    Interface {TypeSpec, tagged object}, Type {name, field names};
 *    tags in the order of the typeBool..typeType constants; TypeSpec tags
 *    typeSpecTypeID..typeSpecNil.
 *  - pkg/state/encode.go, Save(): WriteHeader(count, object=true) (the
 *    length with bit 63 set), every pending Type, then per object its ID
 *    (tagged Uint) and its tagged wire object, IDs ascending.
 *  - pkg/state/decode.go, Load() and ReadHeader(): the reader takes types
 *    and IDs in any order until it has read `count` objects.
 * Bounds: recursion depth, the count of decoded and of kept objects, the
 * count of elements that take no byte (nil), string and name lengths, type
 * and field counts; everything else is bounded by the stream's end (every
 * other object takes at least a byte).
 */
#include "gvisor_wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "snapfs.h"

#define GW_OBJECT_FLAG ((uint64_t)1 << 63)
#define GW_MAX_DEPTH 400
#define GW_MAX_STRING ((uint64_t)16 << 20)    /* kept strings */
#define GW_MAX_TYPES (1u << 20)
#define GW_MAX_FIELDS (1u << 16)
#define GW_MAX_DOTS (1u << 16)
#define GW_MAX_KEPT ((uint64_t)1 << 22)       /* kept objects per graph */
#define GW_MAX_WORK ((uint64_t)1 << 31)       /* decoded objects per graph */
/* Elements that take no byte (nil, noObjects) per array or map: gVisor's
 * encoder writes array elements as values, never as nil (encodeArray()),
 * so a real stream has none; a few are let through. */
#define GW_MAX_EMPTY_ELEMENTS 4096
#define GW_ARENA_BLOCK ((size_t)64 << 10)

enum { SPEC_TYPE_ID, SPEC_POINTER, SPEC_ARRAY, SPEC_SLICE, SPEC_MAP, SPEC_NIL };

static const char *const kind_names[GW_KIND_COUNT] = {
	"bool", "int", "uint", "float32", "float64", "nil", "ref", "string", "slice",
	"array", "map", "struct", "noObjects", "multipleObjects", "interface",
	"complex64", "complex128", "type",
};

const char *gw_kind_name(unsigned int kind)
{
	return kind < GW_KIND_COUNT ? kind_names[kind] : "unknown";
}

/* --- input ---------------------------------------------------------------- */

void gw_input_init(struct gw_input *in, ssize_t (*read)(void *, unsigned char *, size_t),
		   void *ctx, const char *shown)
{
	memset(in, 0, sizeof(*in));
	in->read = read;
	in->ctx = ctx;
	in->shown = shown;
}

static int fill(struct gw_input *in)
{
	ssize_t n = in->read(in->ctx, in->buf, sizeof(in->buf));

	if (n < 0)
		return (int)n;
	in->at = 0;
	in->have = (size_t)n;
	return n > 0;
}

int gw_input_at_end(struct gw_input *in)
{
	int rc;

	if (in->at < in->have)
		return 0;
	rc = fill(in);
	return rc < 0 ? rc : !rc;
}

int gw_input_peek(struct gw_input *in, unsigned char *buf, size_t len)
{
	if (len > sizeof(in->buf))
		len = sizeof(in->buf);
	if (in->have - in->at < len) {
		memmove(in->buf, in->buf + in->at, in->have - in->at);
		in->have -= in->at;
		in->at = 0;
		while (in->have < len) {
			ssize_t n = in->read(in->ctx, in->buf + in->have,
					     sizeof(in->buf) - in->have);

			if (n < 0)
				return (int)n;
			if (n == 0)
				break;
			in->have += (size_t)n;
		}
	}
	if (len > in->have - in->at)
		len = in->have - in->at;
	memcpy(buf, in->buf + in->at, len);
	return (int)len;
}

static int ended(struct gw_input *in, const char *what)
{
	return error_set(-SNAPFS_ECORRUPT, "%s: the state stream ends at byte %llu, inside %s",
			 in->shown, (unsigned long long)in->pos, what);
}

int gw_input_read(struct gw_input *in, unsigned char *buf, size_t len, const char *what)
{
	while (len) {
		size_t take;
		int rc;

		if (in->at == in->have && buf && len >= sizeof(in->buf)) {
			/* Large reads (page data) skip the buffer. */
			ssize_t n = in->read(in->ctx, buf, len);

			if (n < 0)
				return (int)n;
			if (n == 0)
				return ended(in, what);
			buf += n;
			in->pos += (uint64_t)n;
			len -= (size_t)n;
			continue;
		}
		if (in->at == in->have) {
			rc = fill(in);
			if (rc < 0)
				return rc;
			if (rc == 0)
				return ended(in, what);
		}
		take = in->have - in->at;
		if (take > len)
			take = len;
		if (buf) {
			memcpy(buf, in->buf + in->at, take);
			buf += take;
		}
		in->at += take;
		in->pos += take;
		len -= take;
	}
	return 0;
}

__attribute__((format(printf, 2, 3)))
static int corrupt(struct gw_input *in, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return error_set(-SNAPFS_ECORRUPT, "%s: state stream, byte %llu: %s", in->shown,
			 (unsigned long long)in->pos, what);
}

/* wire.loadUint: 7 bits a byte, low first, at most 10 bytes. */
static int load_uint(struct gw_input *in, uint64_t *ret)
{
	uint64_t u = 0;
	unsigned int s = 0;

	for (int i = 0; i <= 9; i++) {
		unsigned char b;
		int rc;

		if (in->at < in->have) {
			b = in->buf[in->at++];
			in->pos++;
		} else {
			rc = gw_input_read(in, &b, 1, "a varint");
			if (rc < 0)
				return rc;
		}
		if (b < 0x80) {
			if (i == 9 && b > 1)
				return corrupt(in, "a varint overflows 64 bits");
			*ret = u | (uint64_t)b << s;
			return 0;
		}
		u |= (uint64_t)(b & 0x7f) << s;
		s += 7;
	}
	return corrupt(in, "a varint runs past 10 bytes");
}

static int load_int(struct gw_input *in, int64_t *ret)
{
	uint64_t u;
	int rc = load_uint(in, &u);

	if (rc < 0)
		return rc;
	*ret = (int64_t)(u >> 1);
	if (u & 1)
		*ret = ~*ret;
	return 0;
}

int gw_read_header(struct gw_input *in, uint64_t *ret_len, bool *ret_object)
{
	uint64_t v;
	int rc = load_uint(in, &v);

	if (rc < 0)
		return rc;
	*ret_object = (v & GW_OBJECT_FLAG) != 0;
	*ret_len = v & ~GW_OBJECT_FLAG;
	return 0;
}

/* --- arena ---------------------------------------------------------------- */

struct gw_arena {
	struct gw_arena *next;
	size_t used, size;
	unsigned char data[];
};

static void *arena_alloc(struct gw_arena **head, size_t len)
{
	struct gw_arena *a = *head;
	void *p;

	len = (len + 15) & ~(size_t)15;
	if (!a || a->size - a->used < len) {
		size_t size = len > GW_ARENA_BLOCK ? len : GW_ARENA_BLOCK;

		a = malloc(sizeof(*a) + size);
		if (!a)
			return NULL;
		a->next = *head;
		a->used = 0;
		a->size = size;
		*head = a;
	}
	p = a->data + a->used;
	a->used += len;
	return p;
}

static void arena_free(struct gw_arena *a)
{
	while (a) {
		struct gw_arena *next = a->next;

		free(a);
		a = next;
	}
}

/* --- objects -------------------------------------------------------------- */

struct dec {
	struct gw_input *in;
	bool keep;
	uint64_t work;       /* objects decoded in this graph */
	uint64_t kept;
	uint64_t last_count; /* the count of the multipleObjects read last */
	struct gw_graph *g;
};

static int decode_tagged(struct dec *d, unsigned int depth, struct gw_obj **ret,
			 unsigned int *ret_tag);
static int decode_kind(struct dec *d, unsigned int kind, unsigned int depth,
		       struct gw_obj **ret);

static int too_deep(struct dec *d)
{
	return corrupt(d->in, "objects nest deeper than %d levels", GW_MAX_DEPTH);
}

static int count_work(struct dec *d)
{
	if (++d->work > GW_MAX_WORK)
		return corrupt(d->in, "more than %llu objects in one graph",
			       (unsigned long long)GW_MAX_WORK);
	return 0;
}

static struct gw_obj *new_obj(struct dec *d, unsigned int kind)
{
	struct gw_obj *o;

	if (++d->kept > GW_MAX_KEPT) {
		corrupt(d->in, "more than %llu objects to keep in one graph",
			(unsigned long long)GW_MAX_KEPT);
		return NULL;
	}
	o = arena_alloc(&d->g->arena, sizeof(*o));
	if (!o) {
		error_set(-ENOMEM, "%s: out of memory", d->in->shown);
		return NULL;
	}
	memset(o, 0, sizeof(*o));
	o->kind = (uint8_t)kind;
	return o;
}

/* A growable list of kept objects while an array or list is read. */
struct kids {
	struct gw_obj **v;
	size_t n, cap;
};

static int kids_push(struct kids *k, struct gw_obj *o)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 8;
		struct gw_obj **v = realloc(k->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		k->v = v;
		k->cap = cap;
	}
	k->v[k->n++] = o;
	return 0;
}

/* Move the list into the arena as o's kids. */
static int kids_finish(struct dec *d, struct kids *k, struct gw_obj *o)
{
	if (k->n > UINT32_MAX)
		return corrupt(d->in, "a list of %llu objects is too long",
			       (unsigned long long)k->n);
	o->n = (uint32_t)k->n;
	if (!k->n)
		return 0;
	o->kids = arena_alloc(&d->g->arena, k->n * sizeof(*o->kids));
	if (!o->kids)
		return error_set(-ENOMEM, "%s: out of memory", d->in->shown);
	memcpy(o->kids, k->v, k->n * sizeof(*o->kids));
	return 0;
}

/* Bytes kept as a NUL-terminated string in the arena (or skipped). */
static int load_bytes(struct dec *d, uint64_t len, char **ret, const char *what)
{
	char *s;

	if (!d->keep || !ret)
		return gw_input_read(d->in, NULL, len, what);
	if (len > GW_MAX_STRING)
		return corrupt(d->in, "%s of %llu bytes is longer than snapfs reads", what,
			       (unsigned long long)len);
	s = arena_alloc(&d->g->arena, (size_t)len + 1);
	if (!s)
		return error_set(-ENOMEM, "%s: out of memory", d->in->shown);
	s[len] = 0;
	*ret = s;
	return gw_input_read(d->in, (unsigned char *)s, (size_t)len, what);
}

static int load_type_spec(struct dec *d, unsigned int depth)
{
	uint64_t tag, v;
	int rc;

	if (depth > GW_MAX_DEPTH)
		return too_deep(d);
	rc = load_uint(d->in, &tag);
	if (rc < 0)
		return rc;
	switch (tag) {
	case SPEC_TYPE_ID:
		return load_uint(d->in, &v);
	case SPEC_POINTER:
	case SPEC_SLICE:
		return load_type_spec(d, depth + 1);
	case SPEC_ARRAY:
		rc = load_uint(d->in, &v);
		return rc < 0 ? rc : load_type_spec(d, depth + 1);
	case SPEC_MAP:
		rc = load_type_spec(d, depth + 1);
		return rc < 0 ? rc : load_type_spec(d, depth + 1);
	case SPEC_NIL:
		return 0;
	default:
		return corrupt(d->in, "unknown type spec %llu", (unsigned long long)tag);
	}
}

static int load_ref(struct dec *d, struct gw_obj *o, unsigned int depth)
{
	uint64_t root, ndots;
	int rc;

	rc = load_uint(d->in, &root);
	if (rc < 0)
		return rc;
	rc = load_uint(d->in, &ndots);
	if (rc < 0)
		return rc;
	if (ndots > GW_MAX_DOTS)
		return corrupt(d->in, "a reference with %llu dots", (unsigned long long)ndots);
	if (o) {
		o->u = root;
		o->n = (uint32_t)ndots;
	}
	for (uint64_t i = 0; i < ndots; i++) {
		int64_t dot;

		rc = load_int(d->in, &dot);
		if (rc < 0)
			return rc;
		if (dot >= 0) {
			if (o && i == 0)
				o->dot = (uint64_t)dot;
			continue;
		}
		if (dot < -(int64_t)GW_MAX_STRING)
			return corrupt(d->in, "a field name of %llu bytes",
				       (unsigned long long)-(dot + 1) + 1);
		if (o)
			o->dot_field = true;
		rc = gw_input_read(d->in, NULL, (size_t)-dot, "a field name");
		if (rc < 0)
			return rc;
	}
	return ndots ? load_type_spec(d, depth + 1) : 0;
}

/* An array's or map's elements: the first tagged, the rest of its kind. */
static int load_elements(struct dec *d, struct gw_obj *o, uint64_t count, unsigned int per,
			 unsigned int depth)
{
	struct kids k = { 0 };
	unsigned int kinds[2] = { 0, 0 };
	int rc = 0;

	for (uint64_t i = 0; i < count && rc == 0; i++) {
		for (unsigned int j = 0; j < per && rc == 0; j++) {
			struct gw_obj *e = NULL;

			if (i == 0) {
				uint64_t tag;

				rc = load_uint(d->in, &tag);
				if (rc < 0)
					break;
				if (tag >= GW_KIND_COUNT) {
					rc = corrupt(d->in, "unknown object kind %llu",
						     (unsigned long long)tag);
					break;
				}
				kinds[j] = (unsigned int)tag;
				if ((tag == GW_NIL || tag == GW_NO_OBJECTS) &&
				    count > GW_MAX_EMPTY_ELEMENTS) {
					rc = corrupt(d->in, "%llu %s elements: elements that take "
						     "no byte, more than %d", (unsigned long long)count,
						     gw_kind_name((unsigned int)tag),
						     GW_MAX_EMPTY_ELEMENTS);
					break;
				}
			}
			rc = decode_kind(d, kinds[j], depth + 1, o ? &e : NULL);
			if (rc == 0 && o)
				rc = kids_push(&k, e);
		}
	}
	if (rc == 0 && o)
		rc = kids_finish(d, &k, o);
	free(k.v);
	return rc;
}

static int load_struct(struct dec *d, struct gw_obj *o, unsigned int depth)
{
	struct gw_obj *fields = NULL;
	uint64_t tid, want;
	unsigned int tag;
	int rc;

	rc = load_uint(d->in, &tid);
	if (rc < 0)
		return rc;
	if (tid > d->g->ntypes)
		return corrupt(d->in, "a struct of type %llu, not defined before it",
			       (unsigned long long)tid);
	want = tid ? d->g->types[tid - 1].nfields : 0;
	rc = decode_tagged(d, depth + 1, o ? &fields : NULL, &tag);
	if (rc < 0)
		return rc;
	/* The fields object: none, a list, or the single field itself. */
	if (tag == GW_NO_OBJECTS) {
		if (want != 0)
			goto out_mismatch;
	} else if (tag == GW_MULTIPLE_OBJECTS) {
		if (want != d->last_count || want < 2)
			goto out_mismatch;
	} else if (want != 1) {
		goto out_mismatch;
	}
	if (o) {
		o->u = tid;
		if (fields->kind == GW_MULTIPLE_OBJECTS) {
			o->n = fields->n;
			o->kids = fields->kids;
		} else if (fields->kind != GW_NO_OBJECTS) {
			o->kids = arena_alloc(&d->g->arena, sizeof(*o->kids));
			if (!o->kids)
				return error_set(-ENOMEM, "%s: out of memory", d->in->shown);
			o->kids[0] = fields;
			o->n = 1;
		}
	}
	return 0;
out_mismatch:
	return corrupt(d->in, "a struct of type '%s' with a field count other than its "
		       "type's %llu", tid ? d->g->types[tid - 1].name : "(none)",
		       (unsigned long long)want);
}

static int load_type(struct dec *d)
{
	struct gw_type t = { 0 };
	struct gw_arena **arena = &d->g->arena;
	uint64_t len, nfields;
	int rc;

	if (d->g->ntypes >= GW_MAX_TYPES)
		return corrupt(d->in, "more than %u types", GW_MAX_TYPES);
	rc = load_uint(d->in, &len);
	if (rc < 0)
		return rc;
	if (len > GW_MAX_STRING)
		return corrupt(d->in, "a type name of %llu bytes", (unsigned long long)len);
	t.name = arena_alloc(arena, (size_t)len + 1);
	if (!t.name)
		return -ENOMEM;
	t.name[len] = 0;
	rc = gw_input_read(d->in, (unsigned char *)t.name, (size_t)len, "a type name");
	if (rc < 0)
		return rc;
	rc = load_uint(d->in, &nfields);
	if (rc < 0)
		return rc;
	if (nfields > GW_MAX_FIELDS)
		return corrupt(d->in, "type '%s' has %llu fields", t.name,
			       (unsigned long long)nfields);
	t.nfields = (uint32_t)nfields;
	t.fields = arena_alloc(arena, (nfields ? nfields : 1) * sizeof(*t.fields));
	if (!t.fields)
		return -ENOMEM;
	for (uint64_t i = 0; i < nfields; i++) {
		rc = load_uint(d->in, &len);
		if (rc < 0)
			return rc;
		if (len > GW_MAX_STRING)
			return corrupt(d->in, "type '%s' has a field name of %llu bytes", t.name,
				       (unsigned long long)len);
		t.fields[i] = arena_alloc(arena, (size_t)len + 1);
		if (!t.fields[i])
			return -ENOMEM;
		t.fields[i][len] = 0;
		rc = gw_input_read(d->in, (unsigned char *)t.fields[i], (size_t)len,
				   "a field name");
		if (rc < 0)
			return rc;
	}
	if (d->g->ntypes % 64 == 0) {
		struct gw_type *v = realloc(d->g->types, (d->g->ntypes + 64) * sizeof(*v));

		if (!v)
			return -ENOMEM;
		d->g->types = v;
	}
	d->g->types[d->g->ntypes++] = t;
	return 0;
}

/* One object of the given kind, its tag already read. *ret is set when
 * the graph keeps objects. */
static int decode_kind(struct dec *d, unsigned int kind, unsigned int depth,
		       struct gw_obj **ret)
{
	struct gw_obj *o = NULL;
	uint64_t v, count;
	int64_t iv = 0;
	int rc;

	if (depth > GW_MAX_DEPTH)
		return too_deep(d);
	rc = count_work(d);
	if (rc < 0)
		return rc;
	if (d->keep && ret) {
		o = new_obj(d, kind);
		if (!o)
			return d->kept > GW_MAX_KEPT ? -SNAPFS_ECORRUPT : -ENOMEM;
		*ret = o;
	}
	switch (kind) {
	case GW_BOOL:
	case GW_UINT:
	case GW_FLOAT32:
	case GW_FLOAT64:
		rc = load_uint(d->in, &v);
		if (rc == 0 && kind == GW_BOOL && v > 1)
			rc = corrupt(d->in, "a bool of value %llu", (unsigned long long)v);
		if (o)
			o->u = v;
		return rc;
	case GW_INT:
		rc = load_int(d->in, &iv);
		if (o)
			o->u = (uint64_t)iv;
		return rc;
	case GW_NIL:
	case GW_NO_OBJECTS:
		return 0;
	case GW_REF:
		return load_ref(d, o, depth);
	case GW_STRING:
		rc = load_uint(d->in, &v);
		if (rc < 0)
			return rc;
		if (o)
			o->n = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
		return load_bytes(d, v, o ? &o->str : NULL, "a string");
	case GW_SLICE:
		rc = load_uint(d->in, &v);
		if (rc == 0 && o)
			o->u2 = v;
		if (rc == 0)
			rc = load_uint(d->in, &count);
		if (rc < 0)
			return rc;
		if (count < v)
			return corrupt(d->in, "a slice longer (%llu) than its capacity",
				       (unsigned long long)v);
		if (o)
			o->u3 = count;
		{
			struct gw_obj ref = { 0 };

			rc = load_ref(d, o ? &ref : NULL, depth);
			if (o) {
				o->u = ref.u;
				o->n = ref.n;
				o->dot_field = ref.dot_field;
				o->dot = ref.dot;
			}
		}
		return rc;
	case GW_ARRAY:
	case GW_MAP:
		rc = load_uint(d->in, &count);
		if (rc < 0)
			return rc;
		return load_elements(d, o, count, kind == GW_MAP ? 2 : 1, depth);
	case GW_STRUCT:
		return load_struct(d, o, depth);
	case GW_MULTIPLE_OBJECTS: {
		struct kids k = { 0 };

		rc = load_uint(d->in, &count);
		for (uint64_t i = 0; rc == 0 && i < count; i++) {
			struct gw_obj *e = NULL;

			rc = decode_tagged(d, depth + 1, o ? &e : NULL, NULL);
			if (rc == 0 && o)
				rc = kids_push(&k, e);
		}
		if (rc == 0 && o)
			rc = kids_finish(d, &k, o);
		free(k.v);
		d->last_count = count;
		return rc;
	}
	case GW_INTERFACE: {
		struct gw_obj *e = NULL;

		rc = load_type_spec(d, depth + 1);
		if (rc == 0)
			rc = decode_tagged(d, depth + 1, o ? &e : NULL, NULL);
		if (rc == 0 && o) {
			o->kids = arena_alloc(&d->g->arena, sizeof(*o->kids));
			if (!o->kids)
				return -ENOMEM;
			o->kids[0] = e;
			o->n = 1;
		}
		return rc;
	}
	case GW_COMPLEX64:
	case GW_COMPLEX128:
		rc = load_uint(d->in, &v);
		return rc < 0 ? rc : load_uint(d->in, &v);
	case GW_TYPE:
		return load_type(d);
	default:
		return corrupt(d->in, "unknown object kind %llu", (unsigned long long)kind);
	}
}

static int decode_tagged(struct dec *d, unsigned int depth, struct gw_obj **ret,
			 unsigned int *ret_tag)
{
	uint64_t tag;
	int rc = load_uint(d->in, &tag);

	if (rc < 0)
		return rc;
	if (tag >= GW_KIND_COUNT)
		return corrupt(d->in, "unknown object kind %llu", (unsigned long long)tag);
	if (ret_tag)
		*ret_tag = (unsigned int)tag;
	return decode_kind(d, (unsigned int)tag, depth, ret);
}

/* --- graphs --------------------------------------------------------------- */

void gw_graph_release(struct gw_graph *g)
{
	if (!g)
		return;
	free(g->types);
	free(g->ids);
	free(g->objs);
	arena_free(g->arena);
	memset(g, 0, sizeof(*g));
}

static int keep_object(struct dec *d, uint64_t id, struct gw_obj *o, size_t *cap)
{
	struct gw_graph *g = d->g;

	if (g->nobjs == *cap) {
		size_t n = *cap ? *cap * 2 : 16;
		uint64_t *ids = realloc(g->ids, n * sizeof(*ids));

		if (!ids)
			return -ENOMEM;
		g->ids = ids;
		struct gw_obj **objs = realloc(g->objs, n * sizeof(*objs));

		if (!objs)
			return -ENOMEM;
		g->objs = objs;
		*cap = n;
	}
	g->ids[g->nobjs] = id;
	g->objs[g->nobjs++] = o;
	return 0;
}

int gw_graph_read(struct gw_input *in, bool keep, struct gw_graph *ret)
{
	struct gw_graph g = { 0 };
	struct dec d = { .in = in, .keep = keep, .g = &g };
	uint64_t count, last_id = 0;
	size_t cap = 0;
	bool object;
	int rc;

	rc = gw_read_header(in, &count, &object);
	if (rc < 0)
		return rc;
	if (!object) {
		rc = corrupt(in, "a data header (%llu bytes) where a state object graph "
			     "starts", (unsigned long long)count);
		goto out_release;
	}
	for (uint64_t i = 0; i < count;) {
		struct gw_obj *o = NULL;
		uint64_t tag, id;

		rc = load_uint(in, &tag);
		if (rc < 0)
			goto out_release;
		if (tag == GW_TYPE) {
			rc = count_work(&d);
			if (rc == 0)
				rc = load_type(&d);
			if (rc < 0)
				goto out_release;
			continue;
		}
		if (tag != GW_UINT) {
			rc = corrupt(in, "a %s where a type or an object ID belongs",
				     gw_kind_name((unsigned int)tag));
			goto out_release;
		}
		rc = load_uint(in, &id);
		if (rc < 0)
			goto out_release;
		/* Ascending, not dense: an object merged into the one
		 * containing it leaves its ID unused (encode.go resolve()). */
		if (id <= last_id) {
			rc = corrupt(in, "object ID %llu out of order",
				     (unsigned long long)id);
			goto out_release;
		}
		last_id = id;
		i++;
		rc = decode_tagged(&d, 0, keep ? &o : NULL, NULL);
		if (rc == 0 && keep)
			rc = keep_object(&d, id, o, &cap);
		if (rc < 0)
			goto out_release;
	}
	if (keep) {
		*ret = g;
		return 0;
	}
	rc = 0;
out_release:
	gw_graph_release(&g);
	return rc;
}

const struct gw_obj *gw_graph_object(const struct gw_graph *g, uint64_t id)
{
	size_t lo = 0, hi = g->nobjs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (g->ids[mid] == id)
			return g->objs[mid];
		if (g->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct gw_type *gw_graph_struct_type(const struct gw_graph *g, const struct gw_obj *o)
{
	if (!o || o->kind != GW_STRUCT || o->u == 0 || o->u > g->ntypes)
		return NULL;
	return &g->types[o->u - 1];
}

const struct gw_obj *gw_graph_field(const struct gw_graph *g, const struct gw_obj *o,
				    const char *name)
{
	const struct gw_type *t = gw_graph_struct_type(g, o);

	if (!t || t->nfields != o->n)
		return NULL;
	for (uint32_t i = 0; i < t->nfields; i++)
		if (strcmp(t->fields[i], name) == 0)
			return o->kids[i];
	return NULL;
}

bool gw_obj_uint(const struct gw_obj *o, uint64_t *ret)
{
	if (!o)
		return false;
	switch (o->kind) {
	case GW_NIL:
		*ret = 0;
		return true;
	case GW_UINT:
	case GW_BOOL:
		*ret = o->u;
		return true;
	case GW_INT:
		if ((int64_t)o->u < 0)
			return false;
		*ret = o->u;
		return true;
	default:
		return false;
	}
}
