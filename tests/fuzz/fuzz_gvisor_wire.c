// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the decoder of gVisor's state encoding (gvisor_wire.c):
 * the input is a state stream. Graphs are decoded one after another, kept
 * and dropped in turn, until the stream ends or is refused; every kept
 * graph is walked through the accessors the gVisor source uses. A refusal
 * is -SNAPFS_ECORRUPT (or -ENOMEM) with a message. Never a crash.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "gvisor_wire.h"
#include "snapfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem {
	const uint8_t *data;
	size_t size, off;
};

static ssize_t mem_read(void *ctx, unsigned char *buf, size_t len)
{
	struct mem *m = ctx;
	size_t n = m->size - m->off < len ? m->size - m->off : len;

	memcpy(buf, m->data + m->off, n);
	m->off += n;
	return (ssize_t)n;
}

static void walk(const struct gw_graph *g)
{
	for (size_t i = 0; i < g->nobjs; i++) {
		const struct gw_obj *o = g->objs[i];
		const struct gw_type *t = gw_graph_struct_type(g, o);
		uint64_t v;

		assert(o && o->kind < GW_KIND_COUNT);
		assert(i == 0 || g->ids[i - 1] < g->ids[i]);
		assert(gw_graph_object(g, g->ids[i]) == o);
		(void)gw_obj_uint(o, &v);
		if (o->kind == GW_STRING)
			assert(strlen(o->str) <= o->n);
		if (o->kind == GW_ARRAY || o->kind == GW_STRUCT || o->kind == GW_MULTIPLE_OBJECTS)
			for (uint32_t k = 0; k < o->n; k++)
				assert(o->kids[k] && o->kids[k]->kind < GW_KIND_COUNT);
		if (t)
			for (uint32_t f = 0; f < t->nfields; f++)
				(void)gw_obj_uint(gw_graph_field(g, o, t->fields[f]), &v);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem m = { data, size, 0 };
	struct gw_input in;

	gw_input_init(&in, mem_read, &m, "fuzz");
	for (int i = 0; i < 8; i++) {
		struct gw_graph g = { 0 };
		uint64_t len;
		bool object;
		int rc;

		if (gw_input_at_end(&in) == 1)
			break;
		if (i == 4) {
			/* A data header, as between the MemoryFile's ranges. */
			rc = gw_read_header(&in, &len, &object);
			if (rc < 0)
				break;
			continue;
		}
		rc = gw_graph_read(&in, i % 2 == 0, &g);
		if (rc < 0) {
			assert(rc == -SNAPFS_ECORRUPT || rc == -ENOMEM);
			assert(snapfs_errmsg()[0] != '\0');
			break;
		}
		walk(&g);
		gw_graph_release(&g);
	}
	return 0;
}
