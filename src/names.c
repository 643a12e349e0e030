// SPDX-License-Identifier: MIT
/*
 * Validation of the names users give: snapshot names and memory kinds.
 */
#include <string.h>

#include "snapfs.h"

bool snapfs_name_valid(const char *name)
{
	size_t len;

	if (!name)
		return false;
	len = strlen(name);
	if (len == 0 || len > SNAPFS_NAME_MAX)
		return false;
	if (name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

static const char *const memory_kinds[] = {
	"system", "anonymous", "pagecache", "tmpfs", "ramdiskfs", "mapped",
};

bool snapfs_kind_valid(const char *kind)
{
	if (!kind)
		return false;
	for (size_t i = 0; i < sizeof(memory_kinds) / sizeof(memory_kinds[0]); i++)
		if (strcmp(kind, memory_kinds[i]) == 0)
			return true;
	return false;
}
