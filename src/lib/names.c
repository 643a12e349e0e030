// SPDX-License-Identifier: MIT
/*
 * Validation of the names users give: snapshot names, comments and memory
 * kinds.
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

/* Length of the UTF-8 sequence at p (1-4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *p)
{
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
		return 0;       /* overlong, surrogate, past U+10FFFF */
	return n;
}

bool snapfs_comment_valid(const char *comment)
{
	const unsigned char *p = (const unsigned char *)comment;
	size_t n;

	if (!comment || strlen(comment) > SNAPFS_COMMENT_MAX)
		return false;
	for (; *p; p += n) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
		n = utf8_len(p);
		if (!n)
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
