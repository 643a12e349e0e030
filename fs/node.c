// SPDX-License-Identifier: MIT
/*
 * Per-snapshot state of the mount: metadata copied from the catalog, the
 * `info` and `segments` texts and the parsed usage set (read once, the data
 * never changes), and the snapfs_image that all open memory and region
 * files of the snapshot share, with the core file built over it and the
 * map.svg picture.
 */
#include "node.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>


/* "2026-11-27T05:46:05Z" (fraction optional) -> seconds since the epoch;
 * zero when it does not parse: a timestamp is decoration, not data. */
static struct timespec parse_created(const char *text)
{
	struct timespec ts = { 0 };
	struct tm tm = { 0 };
	const char *rest;

	rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return ts;
	ts.tv_sec = timegm(&tm);
	if (ts.tv_sec == (time_t)-1)
		ts.tv_sec = 0;
	return ts;
}

int node_new(const struct snapfs_snapshot *snap, struct node **ret_node)
{
	struct node *node;
	int rc;

	node = calloc(1, sizeof(*node));
	if (!node)
		return -ENOMEM;
	atomic_init(&node->refs, 1);
	atomic_init(&node->damage_logged, false);
	pthread_mutex_init(&node->lock, NULL);
	node->snap = *snap;
	node->snap.source = NULL;
	node->snap.notes = NULL;
	if (snap->source && !(node->snap.source = strdup(snap->source))) {
		rc = -ENOMEM;
		goto out_free;
	}
	if (snap->notes && !(node->snap.notes = strdup(snap->notes))) {
		rc = -ENOMEM;
		goto out_free;
	}
	node->created = parse_created(snap->created_at);
	rc = snapfs_info_text(&node->snap, &node->info, &node->info_len);
	if (rc < 0)
		goto out_free;
	*ret_node = node;
	return 0;

out_free:
	node_unref(node);
	return rc;
}

struct node *node_ref(struct node *node)
{
	atomic_fetch_add(&node->refs, 1);
	return node;
}

void node_unref(struct node *node)
{
	if (!node || atomic_fetch_sub(&node->refs, 1) != 1)
		return;
	snapfs_core_close(node->core);
	snapfs_image_close(node->image);
	free(node->map_svg);
	free(node->region_data);
	snapfs_segments_free(node->segs, node->seg_count);
	free(node->segments);
	free(node->info);
	snapfs_snapshot_release(&node->snap);
	pthread_mutex_destroy(&node->lock);
	free(node);
}

/* Under node->lock: read the usage set if not yet done. */
static int segs_load_locked(struct node *node, struct snapfs_store *store)
{
	int rc;

	if (node->segs_loaded)
		return 0;
	rc = snapfs_segments_get(store, node->snap.id, &node->segs,
				 &node->seg_count);
	if (rc < 0)
		return rc;
	node->segs_loaded = true;
	return 0;
}

int node_segments(struct node *node, struct snapfs_store *store,
		  const char **ret_text, size_t *ret_len)
{
	int rc;

	pthread_mutex_lock(&node->lock);
	if (!node->segments) {
		rc = segs_load_locked(node, store);
		if (rc < 0)
			goto out_unlock;
		rc = snapfs_segments_text(node->segs, node->seg_count,
					  &node->segments, &node->segments_len);
		if (rc < 0)
			goto out_unlock;
	}
	*ret_text = node->segments;
	*ret_len = node->segments_len;
	rc = 0;
out_unlock:
	pthread_mutex_unlock(&node->lock);
	return rc;
}

int node_segments_array(struct node *node, struct snapfs_store *store,
			const struct snapfs_segment **ret_segs,
			size_t *ret_count)
{
	int rc;

	pthread_mutex_lock(&node->lock);
	rc = segs_load_locked(node, store);
	if (rc == 0) {
		*ret_segs = node->segs;
		*ret_count = node->seg_count;
	}
	pthread_mutex_unlock(&node->lock);
	return rc;
}

int node_region_data(struct node *node, struct snapfs_store *store,
		     size_t index, uint64_t *ret_bytes)
{
	struct snapfs_image *own = NULL, *img;
	int rc;

	pthread_mutex_lock(&node->lock);
	rc = segs_load_locked(node, store);
	if (rc < 0)
		goto out_unlock;
	if (index >= node->seg_count) {
		rc = -ENOENT;
		goto out_unlock;
	}
	if (!node->region_data) {
		uint64_t *data = calloc(node->seg_count ? node->seg_count : 1,
					sizeof(*data));

		if (!data) {
			rc = -ENOMEM;
			goto out_unlock;
		}
		img = node->image;
		if (!img) {
			rc = snapfs_image_open(store, node->snap.id, &own);
			if (rc < 0) {
				free(data);
				goto out_unlock;
			}
			img = own;
		}
		for (size_t i = 0; i < node->seg_count; i++)
			data[i] = snapfs_image_data_bytes(img,
							  node->segs[i].start,
							  node->segs[i].end);
		snapfs_image_close(own);
		node->region_data = data;
	}
	*ret_bytes = node->region_data[index];
out_unlock:
	pthread_mutex_unlock(&node->lock);
	return rc;
}

int node_image_get(struct node *node, struct snapfs_store *store,
		   struct snapfs_image **ret_image)
{
	int rc = 0;

	pthread_mutex_lock(&node->lock);
	if (!node->image) {
		rc = snapfs_image_open(store, node->snap.id, &node->image);
		if (rc < 0)
			goto out_unlock;
	}
	node->image_users++;
	*ret_image = node->image;
out_unlock:
	pthread_mutex_unlock(&node->lock);
	return rc;
}

void node_image_put(struct node *node)
{
	pthread_mutex_lock(&node->lock);
	if (--node->image_users == 0) {
		snapfs_core_close(node->core);
		node->core = NULL;
		snapfs_image_close(node->image);
		node->image = NULL;
	}
	pthread_mutex_unlock(&node->lock);
}

bool node_has_core(const struct node *node)
{
	return snapfs_format_has_core(node->snap.format);
}

int node_core_facts(struct node *node, struct snapfs_store *store,
		    uint64_t *ret_size, uint64_t *ret_data)
{
	struct snapfs_image *own = NULL;
	struct snapfs_core *core = NULL;
	int rc = 0;

	pthread_mutex_lock(&node->lock);
	if (!node->core_known) {
		if (node->core) {
			core = node->core;
		} else {
			rc = snapfs_image_open(store, node->snap.id, &own);
			if (rc == 0)
				rc = snapfs_core_open(store, &node->snap, own, &core);
			if (rc < 0)
				goto out_close;
		}
		node->core_size = snapfs_core_size(core);
		node->core_data = snapfs_core_data_bytes(core);
		node->core_known = true;
	}
	*ret_size = node->core_size;
	*ret_data = node->core_data;
out_close:
	if (core != node->core)
		snapfs_core_close(core);
	snapfs_image_close(own);
	pthread_mutex_unlock(&node->lock);
	return rc;
}

int node_core_get(struct node *node, struct snapfs_store *store,
		  struct snapfs_core **ret_core)
{
	struct snapfs_image *image;
	int rc = node_image_get(node, store, &image);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&node->lock);
	if (!node->core)
		rc = snapfs_core_open(store, &node->snap, image, &node->core);
	if (rc == 0) {
		node->core_size = snapfs_core_size(node->core);
		node->core_data = snapfs_core_data_bytes(node->core);
		node->core_known = true;
		*ret_core = node->core;
	}
	pthread_mutex_unlock(&node->lock);
	if (rc < 0)
		node_image_put(node);
	return rc;
}

int node_map_svg(struct node *node, struct snapfs_store *store,
		 const char **ret_text, size_t *ret_len)
{
	int rc = 0;

	pthread_mutex_lock(&node->lock);
	if (!node->map_svg)
		rc = snapfs_map_svg(store, node->snap.name, NULL, &node->map_svg,
				    &node->map_svg_len);
	if (rc == 0) {
		*ret_text = node->map_svg;
		*ret_len = node->map_svg_len;
	}
	pthread_mutex_unlock(&node->lock);
	return rc;
}

bool node_first_damage(struct node *node)
{
	return !atomic_exchange(&node->damage_logged, true);
}
