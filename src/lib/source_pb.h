/* SPDX-License-Identifier: MIT */
/*
 * protobuf-c for the image formats (criu, gvisor), private to src/: an
 * allocator that refuses to go past a budget, so that a crafted message
 * (a few bytes per empty repeated entry, each of which protobuf-c turns
 * into a struct and a pointer) cannot make an unpacker allocate without
 * bound.
 */
#pragma once

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

/* An allocator with a budget in bytes. pb_budget_init() fills in
 * .alloc; pass &budget.alloc to the __unpack() and __free_unpacked()
 * functions. The budget object must outlive what was unpacked with it. */
struct pb_budget {
	ProtobufCAllocator alloc;
	size_t used;
	size_t limit;
};
void pb_budget_init(struct pb_budget *budget, size_t limit);

/* The budget for unpacking a message of len bytes: enough for any real
 * image (protobuf-c needs at most a few dozen times the wire size), and
 * bounded by it. */
size_t pb_budget_for(size_t len);
