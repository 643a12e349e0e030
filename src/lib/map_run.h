/* SPDX-License-Identifier: MIT */
/*
 * One row of a snapshot's page map: pages first_page .. first_page +
 * page_count - 1 of the memory file are slots slot .. of blob blob_id,
 * and their decoded bytes hash to hash (page_map.run_hash). Shared by the
 * catalog, the writer, the reader and the hashes.
 */
#pragma once

#include <stdint.h>

struct map_run {
	uint64_t first_page;
	uint32_t page_count;
	uint32_t slot;
	int64_t blob_id;
	int64_t hash;
};
