// SPDX-License-Identifier: MIT
/*
 * A budgeted protobuf-c allocator for the image formats: every block
 * carries its size in a small header, so that frees give the budget back.
 */
#include "source_pb.h"

#include <stdint.h>
#include <stdlib.h>

/* Header in front of every block: keeps the size, aligned for any type. */
union pb_header {
	size_t size;
	max_align_t align;
};

static void *pb_alloc(void *data, size_t size)
{
	struct pb_budget *budget = data;
	union pb_header *h;

	if (size > budget->limit - budget->used)
		return NULL;
	h = malloc(sizeof(*h) + size);
	if (!h)
		return NULL;
	h->size = size;
	budget->used += size;
	return h + 1;
}

static void pb_free(void *data, void *ptr)
{
	struct pb_budget *budget = data;
	union pb_header *h;

	if (!ptr)
		return;
	h = (union pb_header *)ptr - 1;
	budget->used -= h->size;
	free(h);
}

void pb_budget_init(struct pb_budget *budget, size_t limit)
{
	budget->alloc = (ProtobufCAllocator){
		.alloc = pb_alloc,
		.free = pb_free,
		.allocator_data = budget,
	};
	budget->used = 0;
	budget->limit = limit;
}

size_t pb_budget_for(size_t len)
{
	const size_t floor = (size_t)1 << 16;

	if (len > (SIZE_MAX - floor) / 64)
		return SIZE_MAX;
	return len * 64 + floor;
}
