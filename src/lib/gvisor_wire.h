/* SPDX-License-Identifier: MIT */
/*
 * A decoder of gVisor's state encoding (pkg/state and pkg/state/wire): the
 * self-describing object graph that state.Save() writes. One graph is a
 * header (a varint with bit 63 set and the object count), then type
 * definitions (name and field names) and objects, each an object ID and
 * one wire object. Wire objects are tagged: bool, int, uint, floats, nil,
 * ref, string, slice, array, map, struct, the field lists, interface,
 * complex numbers, type. Every length is bounded; a stream that ends early
 * or breaks a rule is refused with -SNAPFS_ECORRUPT and a message that
 * says where. What was checked against: see gvisor_wire.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Where the bytes come from. */
struct gw_input {
	/* Read up to len bytes: the count (0 at the end of the stream) or
	 * -errno with the message set. */
	ssize_t (*read)(void *ctx, unsigned char *buf, size_t len);
	void *ctx;
	const char *shown;   /* names the stream in messages (borrowed) */
	uint64_t pos;        /* bytes consumed so far */
	unsigned char buf[4096];
	size_t have, at;     /* buffered bytes: buf[at..have) */
};

void gw_input_init(struct gw_input *in, ssize_t (*read)(void *, unsigned char *, size_t),
		   void *ctx, const char *shown);
/* Read exactly len bytes; an early end is -SNAPFS_ECORRUPT naming what. */
int gw_input_read(struct gw_input *in, unsigned char *buf, size_t len, const char *what);
/* Copy up to len (at most 4096) of the next bytes to buf without
 * consuming them: the count (less at the end of the stream) or -errno. */
int gw_input_peek(struct gw_input *in, unsigned char *buf, size_t len);
/* true when no byte follows (reads ahead one buffer). <0: a read error. */
int gw_input_at_end(struct gw_input *in);

/* The wire object kinds, numbered as on the wire (pkg/state/wire). */
enum gw_kind {
	GW_BOOL, GW_INT, GW_UINT, GW_FLOAT32, GW_FLOAT64, GW_NIL, GW_REF, GW_STRING,
	GW_SLICE, GW_ARRAY, GW_MAP, GW_STRUCT, GW_NO_OBJECTS, GW_MULTIPLE_OBJECTS,
	GW_INTERFACE, GW_COMPLEX64, GW_COMPLEX128, GW_TYPE,
	GW_KIND_COUNT
};

/* A decoded object, kept only when the graph is read with keep. */
struct gw_obj {
	uint8_t kind;          /* enum gw_kind */
	bool dot_field;        /* ref: one of its dots is a field name */
	uint32_t n;            /* array/struct/multiple/interface: kids;
	                        * map: kids (2 a pair); ref: dots; string:
	                        * bytes */
	uint64_t u;            /* bool/uint: value; int: as int64; floats:
	                        * bits; ref/slice: root object ID; struct:
	                        * type ID */
	uint64_t u2;           /* slice: length */
	uint64_t u3;           /* slice: capacity */
	uint64_t dot;          /* ref, slice: the first dot when it is an
	                        * index (n counts the dots) */
	union {
		struct gw_obj **kids;  /* array, struct fields, map k,v,k,v */
		char *str;             /* string (NUL-terminated) */
	};
};

struct gw_type {
	char *name;
	uint32_t nfields;
	char **fields;
};

struct gw_arena;

/* One state.Save() graph. Owns everything it points to. */
struct gw_graph {
	struct gw_type *types;     /* type ID i is types[i - 1] */
	size_t ntypes;
	uint64_t *ids;             /* object IDs, ascending */
	struct gw_obj **objs;      /* objs[i] has ID ids[i] */
	size_t nobjs;
	struct gw_arena *arena;
};

/* A header: a length and whether it counts objects (state.WriteHeader). */
int gw_read_header(struct gw_input *in, uint64_t *ret_len, bool *ret_object);

/* Decode one graph. With keep the objects are kept in *ret (release it);
 * without, they are checked and dropped. */
int gw_graph_read(struct gw_input *in, bool keep, struct gw_graph *ret);
void gw_graph_release(struct gw_graph *g);

/* The object with that ID, or NULL. */
const struct gw_obj *gw_graph_object(const struct gw_graph *g, uint64_t id);
/* The type of a struct object, or NULL (type ID 0 or unknown). */
const struct gw_type *gw_graph_struct_type(const struct gw_graph *g, const struct gw_obj *o);
/* The named field of a struct object, or NULL. */
const struct gw_obj *gw_graph_field(const struct gw_graph *g, const struct gw_obj *o,
				    const char *name);
/* An integer-like object's value: uint, non-negative int, bool; nil is 0.
 * false for anything else. */
bool gw_obj_uint(const struct gw_obj *o, uint64_t *ret);
/* The name of a kind, for messages. */
const char *gw_kind_name(unsigned int kind);
