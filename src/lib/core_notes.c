// SPDX-License-Identifier: MIT
/*
 * Lists of process notes (core_notes.h): what captures collect and the
 * catalog stores, copied in and freed as a whole.
 */
#include "core_notes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int core_note_list_add(struct core_note_list *list, const char *owner, uint32_t type,
		       const void *descr, size_t len)
{
	struct core_note *n;
	size_t owner_len = strlen(owner);

	if (owner_len == 0 || owner_len > CORE_NOTE_OWNER_MAX || len > CORE_NOTE_DESCR_MAX)
		return -EINVAL;
	if (list->count == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 16;
		struct core_note *bigger = realloc(list->notes, cap * sizeof(*bigger));

		if (!bigger)
			return -ENOMEM;
		list->notes = bigger;
		list->cap = cap;
	}
	n = &list->notes[list->count];
	*n = (struct core_note){ .type = type, .len = len };
	n->owner = strdup(owner);
	if (!n->owner)
		return -ENOMEM;
	if (len) {
		n->descr = malloc(len);
		if (!n->descr) {
			free(n->owner);
			return -ENOMEM;
		}
		memcpy(n->descr, descr, len);
	}
	list->count++;
	return 0;
}

int core_note_list_add_machine(struct core_note_list *list, uint16_t machine)
{
	unsigned char le[2] = { (unsigned char)(machine & 0xff), (unsigned char)(machine >> 8) };

	return core_note_list_add(list, CORE_NOTE_OWNER_SNAPFS, CORE_NOTE_MACHINE, le, 2);
}

void core_note_list_release(struct core_note_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->notes[i].owner);
		free(list->notes[i].descr);
	}
	free(list->notes);
	*list = (struct core_note_list){ 0 };
}
