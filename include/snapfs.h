/* SPDX-License-Identifier: MIT */
/*
 * libsnapfs: the one public header of the snapfs core.
 *
 * A store is a directory holding snapfs.db, an SQLite database of memory
 * snapshots: usage segments, a page map, and compressed, checksummed,
 * de-duplicated page blobs. This header is everything the CLI (src/cli/)
 * and the FUSE layer (fs/) may use. The library never prints.
 *
 * Conventions: actions return 0 (or a count) on success and a negative
 * number on failure: -errno, or -SNAPFS_E* below. After a failure,
 * snapfs_errmsg() gives a one-line detail that names the file, snapshot or
 * offset concerned, suitable for "snapfs: %s". Output parameters are named
 * ret_* and are left untouched on failure. Objects are freed by their
 * _close and _free functions, which accept NULL.
 *
 * Who owns what: the caller owns every object the library hands out
 * (stores, images, snapshot structs and lists, segment arrays, malloc'ed
 * texts and arrays) until it gives it back with the matching
 * snapfs_*_close / _free / _release, or free(3) where a function says so;
 * an image must be closed before its store. Strings and structs passed in
 * are only read during the call and are never kept (except where a
 * function says it copies them). snapfs_strerror() texts are static;
 * snapfs_errmsg() belongs to the library (per thread, see below).
 * Threads: a store and an image may be used from many threads at once;
 * a snapfs_read_slices is used by one thread.
 *
 * Installed as <includedir>/snapfs/snapfs.h with libsnapfs.so.0 and
 * snapfs.pc: build with `cc x.c $(pkg-config --cflags --libs snapfs)` and
 * #include <snapfs.h>. The shared object exports the SNAPFS_API functions
 * below and nothing else.
 */
#pragma once

/* Marks the functions libsnapfs exports. The library is compiled with
 * hidden visibility, so the functions below are the only symbols its
 * shared object offers (tests/lib/test_symbols.py checks it). */
#if defined(__GNUC__)
#define SNAPFS_API __attribute__((visibility("default")))
#else
#define SNAPFS_API
#endif

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Bytes per page: the unit of zero detection, dedup and the page map. */
#define SNAPFS_PAGE_SIZE 4096u
/* Longest snapshot name. */
#define SNAPFS_NAME_MAX 128
/* The schema version this library writes (PRAGMA user_version). */
#define SNAPFS_SCHEMA_VERSION 5
/* The database file inside a store directory. */
#define SNAPFS_DB_FILE "snapfs.db"

/* snapfs's own error numbers, returned negated like -errno. */
enum snapfs_error {
	SNAPFS_ENOTSTORE = 4096, /* directory is not a store (no snapfs.db) */
	SNAPFS_ENEWER,           /* store has a newer schema version */
	SNAPFS_ECORRUPT,         /* stored data failed a check */
	SNAPFS_EBADNAME,         /* snapshot name is not valid */
	SNAPFS_EUSAGE,           /* a usage file or option is malformed */
	SNAPFS_ECANCELED,        /* the caller's cancel flag was raised */
};

/* Text for a negative return value (-errno or -SNAPFS_E*). */
SNAPFS_API const char *snapfs_strerror(int rc);
/* Detail of the last failure in this thread ("snapshot 'x': no such
 * snapshot"); "" when there is none. Valid until the next call into the
 * library from this thread. */
SNAPFS_API const char *snapfs_errmsg(void);

/* true if name is 1..128 of [A-Za-z0-9._-], not starting with '.' or '-'. */
SNAPFS_API bool snapfs_name_valid(const char *name);
/* Longest snapshot comment, in bytes. */
#define SNAPFS_COMMENT_MAX 1024
/* true if comment is at most SNAPFS_COMMENT_MAX bytes of UTF-8 text
 * without control characters (so that it fits on one line of list). */
SNAPFS_API bool snapfs_comment_valid(const char *comment);

/* --- stores ------------------------------------------------------------ */

struct snapfs_store;

enum snapfs_open_flags {
	SNAPFS_OPEN_READONLY = 1 << 0, /* never write: the mount, info, list */
};

/* Create a new store in dir (created if missing; an existing store is
 * -EEXIST). */
SNAPFS_API int snapfs_store_create(const char *dir);

/* Create a new store in dir whose page data lives in the S3-compatible
 * bucket url ("s3://BUCKET/PREFIX"; endpoint, region and credentials from
 * the AWS environment variables and files, never stored). dir keeps a copy
 * of the bucket's newest index and a cache of pack bytes; a bucket with
 * snapshots already (saved from another host) is pulled. Every open of the
 * store pulls the newest index first; every save publishes one. */
SNAPFS_API int snapfs_store_create_remote(const char *dir, const char *url);
/* The bucket a remote store is bound to, or NULL for a local store. */
SNAPFS_API const char *snapfs_store_remote_url(const struct snapfs_store *store);
/* The index generation the open store is (0 for a local store). */
SNAPFS_API int64_t snapfs_store_remote_generation(struct snapfs_store *store);

/* Open the store in dir. Fails with -SNAPFS_ENOTSTORE if dir holds no
 * store, -SNAPFS_ENEWER if its schema is newer than this library (the
 * store is not modified). A read-write open upgrades an older schema. The
 * store may be used from several threads at once: each thread's reads go
 * through a connection of their own. */
SNAPFS_API int snapfs_store_open(const char *dir, unsigned flags,
		      struct snapfs_store **ret_store);
SNAPFS_API void snapfs_store_close(struct snapfs_store *store);

/* Bound the decoded-blob cache shared by all images of this store. */
SNAPFS_API void snapfs_store_set_cache_size(struct snapfs_store *store, size_t bytes);
/* Default cache size in bytes. */
#define SNAPFS_DEFAULT_CACHE_SIZE ((size_t)128 << 20)

/* A number that changes whenever another connection commits to the store
 * (PRAGMA data_version): cheap to poll to notice new or removed snapshots.
 * Returns < 0 on failure. */
SNAPFS_API int64_t snapfs_store_generation(struct snapfs_store *store);
/* True once the store's directory or its snapfs.db is found to be another
 * file than the one snapfs_store_open() opened (moved, replaced by `mv`,
 * removed); snapfs_errmsg() then says so. From then on every read of the
 * store fails with -EIO: snapfs never mixes two databases. Checked when a
 * connection is opened, at every snapfs_store_generation(), and here (the
 * files looked at again at most every 100 ms: cheap enough to call for
 * every read). */
SNAPFS_API bool snapfs_store_replaced(struct snapfs_store *store);

/* Store-wide accounting. */
struct snapfs_store_summary {
	uint64_t snapshot_count;
	uint64_t logical_bytes;  /* sum of file_size */
	uint64_t data_bytes;     /* sum of snapshots' data_bytes */
	uint64_t unique_pages;   /* distinct stored pages (blob slots) */
	uint64_t blob_count;
	uint64_t blob_bytes;     /* sum of blobs' stored_size */
	uint64_t file_bytes;     /* snapfs.db (+ -wal) and packs on disk */
};
SNAPFS_API int snapfs_store_summary(struct snapfs_store *store,
			 struct snapfs_store_summary *ret_summary);

/* --- snapshots ----------------------------------------------------------- */

/* One snapshot's metadata. source, notes and comment are owned by the
 * struct; free them with snapfs_snapshot_release(). */
struct snapfs_snapshot {
	int64_t id;
	char name[SNAPFS_NAME_MAX + 1];
	char created_at[32];               /* ISO-8601 UTC */
	int64_t parent_id;                 /* 0: none */
	char parent[SNAPFS_NAME_MAX + 1];  /* "" when none */
	uint64_t file_size;
	uint32_t page_size;
	char format[16];
	char *source;
	char *notes;                       /* NULL when none */
	uint64_t segment_count;
	uint64_t committed_bytes;
	uint64_t data_bytes;
	uint64_t stored_bytes;
	int64_t map_digest;                /* integrity hash of the page map */
	int64_t meta_digest;               /* integrity hash of the fields above that
	                                    * decide the bytes (see schema/README.md) */
	char *comment;                     /* save --comment; NULL when none (not
	                                    * sealed: it decides no bytes) */
};
SNAPFS_API void snapfs_snapshot_release(struct snapfs_snapshot *snap);
/* 0 if snap's name, parent, size, page size, format, segments and page
 * map digest are the ones snapfs recorded (snapshots.meta_digest);
 * -SNAPFS_ECORRUPT if anything was changed outside snapfs (two names
 * swapped, a size edited...). Reading a snapshot (snapfs_image_open)
 * checks this itself; callers that show a snapshot's metadata call it. */
SNAPFS_API int snapfs_snapshot_check(struct snapfs_store *store, const struct snapfs_snapshot *snap);

/* Look up a snapshot by name: -ENOENT if there is none. */
SNAPFS_API int snapfs_snapshot_get(struct snapfs_store *store, const char *name,
			struct snapfs_snapshot *ret_snap);
/* All snapshots sorted by name. Free with snapfs_snapshot_list_free(). */
SNAPFS_API int snapfs_snapshot_list(struct snapfs_store *store,
			 struct snapfs_snapshot **ret_snaps, size_t *ret_count);
SNAPFS_API void snapfs_snapshot_list_free(struct snapfs_snapshot *snaps, size_t count);

/* Remove snapshots by name, all or none: -ENOENT names the first unknown
 * one. Their blobs stay until snapfs_gc(). Children's parent_id becomes
 * NULL. A snapshot that a reader has open (an image, in this process or
 * another) is only hidden, like an unlinked file: it is gone from every
 * lookup and listing and its name is free at once, but its pages stay
 * until the last reader closes it and a later snapfs_gc() runs. Returns
 * the number of snapshots hidden that way (0: all deleted outright). */
SNAPFS_API int snapfs_snapshot_remove(struct snapfs_store *store,
			   const char *const *names, size_t count);

/* Give snapshot old_name the name new_name, in one transaction that also
 * reseals it (its seal covers the name). -ENOENT if there is no old_name,
 * -EEXIST if new_name is taken, -SNAPFS_EBADNAME if either is invalid,
 * -SNAPFS_ECORRUPT if the snapshot was changed outside snapfs (a rename
 * never seals what snapfs did not write). Readers that have it open go on
 * reading it; a mount shows the new name at its next look. */
SNAPFS_API int snapfs_snapshot_rename(struct snapfs_store *store, const char *old_name,
			   const char *new_name);

/* --- retention ------------------------------------------------------------ */

/* Which snapshots snapfs_prune() keeps. Each rule keeps snapshots on its
 * own; a snapshot any rule keeps stays, every other selected one goes.
 * Snapshots are taken newest first (created_at, then id):
 *   keep_last N     the N newest;
 *   keep_within S   those created at or after now - S seconds;
 *   keep_hourly N, keep_daily N, keep_weekly N, keep_monthly N: the newest
 *                   snapshot of each of the N most recent UTC hours / days /
 *                   ISO weeks (Monday to Sunday) / months that have one; a
 *                   snapshot kept by one rule still counts for the others.
 * A snapshot whose created_at is not an ISO-8601 UTC time is always kept.
 * Selection: names starting with prefix, or matching glob (fnmatch(3));
 * NULL: all. At least one keep rule must be non-zero (else -EINVAL). */
struct snapfs_prune_rules {
	unsigned keep_last;
	int64_t keep_within;            /* seconds; 0: no such rule */
	const char *keep_within_text;   /* as the user wrote it, for reasons */
	unsigned keep_hourly, keep_daily, keep_weekly, keep_monthly;
	const char *prefix;             /* NULL: no prefix rule */
	const char *glob;               /* NULL: no glob rule */
	int64_t now;                    /* seconds since the epoch; 0: now */
};

/* One selected snapshot and what prune does with it. */
struct snapfs_prune_item {
	char name[SNAPFS_NAME_MAX + 1];
	char created_at[32];
	int64_t id;
	int64_t time;                   /* created_at in seconds since the epoch */
	bool readable;                  /* created_at could be read */
	bool keep;
	char why[256];                  /* "last #1, daily #1"; "" when removed */
};

/* Longest --keep-within number (of its unit). */
#define SNAPFS_DURATION_MAX 100000
/* "7d": a whole number 1..SNAPFS_DURATION_MAX and one unit, h (hours), d
 * (days), w (weeks, 7 days), m (months, 31 days), y (years, 365 days), in
 * seconds; -EINVAL if text is not one. */
SNAPFS_API int snapfs_duration_parse(const char *text, int64_t *ret_seconds);

/* Apply rules to the store's snapshots in one write transaction: remove
 * (as snapfs_snapshot_remove() does) every selected snapshot no rule
 * keeps, unless dry_run. *ret_items lists the selected snapshots newest
 * first (malloc'ed, the caller frees it). Returns the number of removed
 * snapshots that a reader had open and that were only hidden. */
SNAPFS_API int snapfs_prune(struct snapfs_store *store, const struct snapfs_prune_rules *rules,
		 bool dry_run, struct snapfs_prune_item **ret_items, size_t *ret_count);

/* One segment of a snapshot's usage set. label is owned by the array. */
struct snapfs_segment {
	uint64_t start;       /* byte offset, page-aligned */
	uint64_t end;         /* half-open */
	char kind[16];        /* system anonymous pagecache tmpfs ramdiskfs mapped */
	int64_t memcg_id;
	bool committed;
	char *label;          /* NULL when none */
};
SNAPFS_API int snapfs_segments_get(struct snapfs_store *store, int64_t snapshot_id,
			struct snapfs_segment **ret_segs, size_t *ret_count);
SNAPFS_API void snapfs_segments_free(struct snapfs_segment *segs, size_t count);

/* The text of a snapshot's `info` file (one "key: value" a line) and of
 * its `segments` file (one "0xSTART 0xEND KIND MEMCG COMMITTED LABEL" a
 * line), as the mount serves them and `snapfs info` prints. Control
 * characters and backslashes in text fields are written as \ooo; empty
 * fields as "-". *ret_text is malloc'ed, the caller frees it. */
SNAPFS_API int snapfs_info_text(const struct snapfs_snapshot *snap, char **ret_text,
		     size_t *ret_len);
SNAPFS_API int snapfs_segments_text(const struct snapfs_segment *segs, size_t count,
			 char **ret_text, size_t *ret_len);

/* true if kind is one of the six memory kinds. */
SNAPFS_API bool snapfs_kind_valid(const char *kind);

/* --- progress and cancellation ------------------------------------------ */

/* Called now and then during long work with bytes done and bytes in all. */
typedef void (*snapfs_progress_fn)(void *data, uint64_t done, uint64_t total);

struct snapfs_progress {
	snapfs_progress_fn fn;          /* NULL: no reports */
	void *data;
	volatile sig_atomic_t *cancel;  /* non-NULL and set: stop, -SNAPFS_ECANCELED */
};

/*
 * A process-wide cancel flag for every SQL statement libsnapfs runs, on
 * every connection (NULL, the default: none). Once *flag is non-zero, a
 * statement that is running stops within about a thousand SQLite steps
 * and any new one fails at once, all with -SNAPFS_ECANCELED; transactions
 * roll back, so nothing half-written stays. Meant for SIGINT / SIGTERM
 * handlers that set the flag: a long query (verify's integrity check, a
 * large store) cannot outlast the signal.
 */
SNAPFS_API void snapfs_set_cancel_flag(volatile sig_atomic_t *flag);

/* --- the store's write lock ---------------------------------------------- */

/* Who holds a store's write lock, as it recorded itself in the store's
 * lock-holder file (schema/README.md, "Files"). */
struct snapfs_lock_holder {
	pid_t pid;                  /* 0: not known (not snapfs, or it died) */
	char doing[160];            /* "save 'vm1'"; "" when not known */
};

/* Called once, at once, when a write finds the store's lock held and
 * starts to wait for it (not when timeout_ms is 0). */
typedef void (*snapfs_lock_wait_fn)(void *data, const struct snapfs_lock_holder *holder);

/* Process-wide, like the cancel flag: a write (save, rm, gc, an upgrade...)
 * that finds the store's lock held waits up to timeout_ms (0: fails at
 * once; default SNAPFS_DEFAULT_LOCK_WAIT_MS) before it fails with -EBUSY
 * and a message naming the holder; waiting(data, holder) is called when
 * the wait starts (NULL: not called). doing ("save 'vm2'", copied) is what
 * this process records for others while it holds the lock. */
SNAPFS_API void snapfs_set_lock_wait(int timeout_ms, const char *doing, snapfs_lock_wait_fn waiting,
			  void *data);
#define SNAPFS_DEFAULT_LOCK_WAIT_MS 5000

/* --- save ---------------------------------------------------------------- */

enum snapfs_codec {
	SNAPFS_CODEC_NONE = 0,
	SNAPFS_CODEC_ZSTD = 1,
	SNAPFS_CODEC_LZ4 = 2,
};
/* "none", "zstd", "lz4" <-> codec; parse returns -EINVAL when unknown. */
SNAPFS_API const char *snapfs_codec_name(enum snapfs_codec codec);
SNAPFS_API int snapfs_codec_parse(const char *name, enum snapfs_codec *ret_codec);
/* The default level of a codec, and whether level is valid for it. */
SNAPFS_API int snapfs_codec_default_level(enum snapfs_codec codec);
SNAPFS_API bool snapfs_codec_level_valid(enum snapfs_codec codec, int level);
/* The levels codec takes, from *ret_min to *ret_max (0 to 0: none). */
SNAPFS_API void snapfs_codec_level_range(enum snapfs_codec codec, int *ret_min, int *ret_max);

struct snapfs_save_opts {
	const char *format;       /* "raw"; NULL: detect */
	const char *parent;       /* parent snapshot name, or NULL */
	const char *kind;         /* kind for raw data ranges; NULL: anonymous */
	const char *usage_path;   /* usage file for raw sources, or NULL */
	const char *comment;      /* free text recorded with it, or NULL; see
	                           * snapfs_comment_valid() */
	enum snapfs_codec codec;
	int level;                /* codec level; 0: the codec's default */
	struct snapfs_progress progress;
	bool overlay;             /* source is a sparse diff file (a Firecracker
	                           * diff snapshot) over parent: its holes read
	                           * the parent's bytes, as rebase-snap makes
	                           * them; needs parent and a raw source */
	const char *key_file;     /* gvisor: file holding the HMAC key its
	                           * checkpoint.img was written with, or NULL */
};

struct snapfs_save_result {
	int64_t id;
	uint64_t file_size;
	uint64_t scanned_bytes;   /* data bytes read from the source */
	uint64_t zero_pages;      /* pages found all zero, not stored */
	uint64_t data_pages;      /* non-zero pages mapped */
	uint64_t new_pages;       /* pages stored in new blobs */
	uint64_t dedup_pages;     /* pages that reused a stored page */
	uint64_t new_blob_bytes;  /* compressed bytes added */
	uint64_t ignored_bytes;   /* data outside the usage set, not saved */
};

/* Save the memory image at source as snapshot name, in one transaction:
 * on any failure (or cancel) the store is as it was. -EEXIST if name is
 * taken, -SNAPFS_EBADNAME if it is invalid. */
SNAPFS_API int snapfs_save(struct snapfs_store *store, const char *name,
		const char *source, const struct snapfs_save_opts *opts,
		struct snapfs_save_result *ret_result);

/* One piece of this process's memory to save (a VMM's guest RAM): len
 * bytes at addr become the memory file's bytes from offset on (a guest
 * physical address, say), as one segment of kind (NULL: anonymous),
 * memcg_id and label (NULL: none). */
struct snapfs_mem_region {
	const void *addr;         /* read during the call only */
	uint64_t offset;          /* page-aligned */
	uint64_t len;             /* whole pages, but for a region that ends the
	                           * memory file */
	const char *kind;
	int64_t memcg_id;
	const char *label;
};

/* snapfs_save() from memory rather than a file: regions (in any order, not
 * overlapping) make a memory file of file_size bytes (0: up to the end of
 * the last region); between them are holes. Same rules as snapfs_save():
 * one transaction (a failure or cancel leaves the store as it was), zero
 * pages never stored, pages shared with the whole store (opts->parent for
 * an incremental save), codec, level, comment, progress. opts->format,
 * usage_path and kind must be NULL (the regions give the usage set).
 * -EINVAL for a bad region (unaligned, overlapping, past file_size, an
 * unknown kind), -EEXIST if name is taken. The memory must not change
 * during the call (pause the guest): what is read is what is saved. */
SNAPFS_API int snapfs_save_memory(struct snapfs_store *store, const char *name,
		       const struct snapfs_mem_region *regions, size_t count,
		       uint64_t file_size, const struct snapfs_save_opts *opts,
		       struct snapfs_save_result *ret_result);

/* --- reading ------------------------------------------------------------- */

/* One snapshot's memory file, open for reading. Thread-safe: any number of
 * threads may read one image at once. Reads check every blob's checksum and
 * every run's hash; damage gives -EIO, never wrong bytes. */
struct snapfs_image;

/* Open snapshot snapshot_id: -ENOENT if there is none (or it was
 * removed). The image claims the snapshot until it is closed: rm only
 * hides a claimed snapshot and gc keeps its pages, so the image reads the
 * same bytes to the end, whatever happens to the name. The claim is a
 * lock on the store's claims file that dies with the process. */
SNAPFS_API int snapfs_image_open(struct snapfs_store *store, int64_t snapshot_id,
		      struct snapfs_image **ret_image);
SNAPFS_API void snapfs_image_close(struct snapfs_image *image);
SNAPFS_API uint64_t snapfs_image_size(const struct snapfs_image *image);
/* Pages that hold data (the rest read as zeros). */
SNAPFS_API uint64_t snapfs_image_data_pages(const struct snapfs_image *image);
/* Bytes of stored (data) pages within [start, end), clamped to the file
 * size: the st_blocks of a range. 0 when the range is empty. */
SNAPFS_API uint64_t snapfs_image_data_bytes(const struct snapfs_image *image,
				 uint64_t start, uint64_t end);

/* Read up to len bytes at off into buf. Returns the count read, which is
 * len unless the file ends first (0 at or past the end), or a negative
 * error; a read that touches a damaged page fails whole with -EIO. */
SNAPFS_API ssize_t snapfs_image_read(struct snapfs_image *image, void *buf, size_t len,
			  uint64_t off);

/* The bytes of one read without copying them: slices in file order that
 * point into the store's cache of decoded blobs (each entry held until
 * snapfs_read_slices_release()) and, for holes and zero pages, into one
 * shared buffer of zeros. The bytes are read-only, although iov_base is
 * not const. Fill with snapfs_image_read_slices(); reads of up to
 * SNAPFS_READ_SLICES_BYTES fit the inline arrays, longer ones grow on the
 * heap. Lives on the caller's stack (about 6 KiB); not thread-shared.
 * The slices need the store open until they are released, not the image. */
#define SNAPFS_READ_SLICES_BYTES (1u << 20)
#define SNAPFS_READ_SLICES_INLINE (SNAPFS_READ_SLICES_BYTES / SNAPFS_PAGE_SIZE + 2)

struct snapfs_read_slices {
	struct iovec *iov;           /* count slices, for writev(2) and the like */
	size_t count;
	size_t len;                  /* bytes in all slices: the count read */
	/* Private to the library. */
	struct snapfs_store *store;  /* whose cache holds the pins */
	const void **pins;           /* pin_count cache entries held */
	size_t pin_count;
	size_t iov_cap, pin_cap;
	struct iovec iov_inline[SNAPFS_READ_SLICES_INLINE];
	const void *pins_inline[SNAPFS_READ_SLICES_INLINE];
};

/* Read up to len bytes at off as slices, with snapfs_image_read()'s rules:
 * slices->len is len unless the file ends first (0 at or past the end);
 * a read that touches a damaged page fails whole with -EIO. Returns 0 or a
 * negative error. slices needs no setup; afterwards, on success or not,
 * call snapfs_read_slices_release() once (on failure it holds nothing). */
SNAPFS_API int snapfs_image_read_slices(struct snapfs_image *image, uint64_t off,
			     size_t len, struct snapfs_read_slices *slices);
/* snapfs_image_read_slices() for a prefetcher (a working set pushed
 * ahead of a reader): the blobs of the range are first read from their
 * packs in as few large reads as their places allow, and the read leaves
 * the state by which readers are judged sequential alone. Same checks,
 * same bytes. */
SNAPFS_API int snapfs_image_prefetch_slices(struct snapfs_image *image, uint64_t off,
				 size_t len, struct snapfs_read_slices *slices);
/* Let go of the cache entries and heap arrays of slices; its bytes are
 * gone after this. */
SNAPFS_API void snapfs_read_slices_release(struct snapfs_read_slices *slices);

/* lseek(2) SEEK_DATA / SEEK_HOLE at page granularity: the offset of the
 * next data page or hole at or after off, clamped to the file size;
 * -ENXIO if off is at or past the end. */
SNAPFS_API int64_t snapfs_image_seek(struct snapfs_image *image, uint64_t off,
			  int whence);

/* --- diff ---------------------------------------------------------------- */

enum snapfs_diff_status {
	SNAPFS_DIFF_CHANGED,      /* data in both, different bytes */
	SNAPFS_DIFF_ADDED,        /* data only in B */
	SNAPFS_DIFF_REMOVED,      /* data only in A (a page that became zero too) */
};
SNAPFS_API const char *snapfs_diff_status_name(enum snapfs_diff_status status);

/* Called once per range, in offset order; adjacent pages of one status
 * come as one half-open byte range. A non-zero return stops the diff and
 * is returned. */
typedef int (*snapfs_diff_fn)(void *data, uint64_t start, uint64_t end,
			      enum snapfs_diff_status status);

/* The pages that differ between snapshots a and b. Pages that share a
 * stored slot are equal without reading; others are compared byte by byte
 * through the read path (damage: -EIO). */
SNAPFS_API int snapfs_diff(struct snapfs_store *store, const char *name_a,
		const char *name_b, snapfs_diff_fn fn, void *data);

/* --- gc ------------------------------------------------------------------ */

struct snapfs_gc_result {
	uint64_t blobs_removed;
	uint64_t blob_bytes_removed;  /* stored bytes of the blobs removed */
	uint64_t index_rows_removed;
	uint64_t packs_removed;       /* pack files no blob was left in */
	uint64_t file_bytes_before;   /* snapfs.db + -wal + packs on disk */
	uint64_t file_bytes_after;
	uint64_t removed_purged;      /* removed snapshots no reader held: deleted */
	uint64_t removed_kept;        /* removed snapshots still open: kept */
	uint64_t kept_blobs;          /* blobs only those still use */
	uint64_t kept_bytes;          /* their stored bytes */
	uint64_t remote_objects_removed; /* a remote store: pack objects no index
	                                  * names (saves killed before publishing) */
	uint64_t remote_bytes_removed;   /* their bytes */
};

/* First delete the snapshots that rm hid for their readers and that no
 * reader claims any more; then delete blobs that no snapshot uses, in one
 * transaction, and give the space back to the file system. Safe while
 * others read: pages of a snapshot still open are kept (removed_kept,
 * kept_bytes) for a later run. A gc killed at any moment loses nothing
 * still referenced. */
SNAPFS_API int snapfs_gc(struct snapfs_store *store, const struct snapfs_progress *progress,
	      struct snapfs_gc_result *ret_result);

/* --- verify -------------------------------------------------------------- */

/* Called once per problem found, with a one-line description naming the
 * snapshot, blob and byte range concerned. */
typedef void (*snapfs_damage_fn)(void *data, const char *problem);

struct snapfs_verify_opts {
	struct snapfs_progress progress;
	snapfs_damage_fn report;
	void *report_data;
};

/* Check the named snapshots (all, and every blob and the database itself,
 * when count is 0): structure, page map, every blob's checksum and every
 * run's hash. Returns 0 and the number of problems in *ret_problems, or a
 * negative error if the check itself could not run. */
SNAPFS_API int snapfs_verify(struct snapfs_store *store, const char *const *names,
		  size_t count, const struct snapfs_verify_opts *opts,
		  uint64_t *ret_problems);

/* --- restore ------------------------------------------------------------- */

struct snapfs_restore_opts {
	bool force;               /* replace an existing output */
	struct snapfs_progress progress;
};

/* Write snapshot name's memory file to output ("-": standard output).
 * A regular file is written sparse through a temporary file in the same
 * directory and renamed into place, so that a failure leaves no output and
 * an existing file untouched. -EEXIST if output exists and !force. */
SNAPFS_API int snapfs_restore(struct snapfs_store *store, const char *name,
		   const char *output, const struct snapfs_restore_opts *opts);

/* --- export ------------------------------------------------------------- */

struct snapfs_export_opts {
	bool force;               /* replace existing output files */
	struct snapfs_progress progress;
};

/* Write snapshot name into directory dir (made if missing) as a gVisor
 * checkpoint's memory files: pages_meta.img (an 8-byte little-endian
 * length and a version 1 MemoryFileMetadataProto: one 1 GiB chunk per GiB
 * of the file, one range per segment with its kind, memcg and committed
 * flag) and pages.img (the committed segments' bytes back to back), the
 * format `snapfs save --format gvisor` reads. Labels are not written
 * (gVisor has none); a memcg outside 0..2^32-1 is -ERANGE. -EEXIST if
 * either file exists and !force. Written through temporary files renamed
 * into place: a failure leaves neither file. */
SNAPFS_API int snapfs_export_gvisor(struct snapfs_store *store, const char *name,
				    const char *dir, const struct snapfs_export_opts *opts);

/* --- working sets -------------------------------------------------------- */

/* A run of consecutive pages of a memory file: pages first_page ..
 * first_page + page_count - 1 (page numbers are byte offsets / 4096). */
struct snapfs_page_run {
	uint64_t first_page;
	uint64_t page_count;               /* > 0 */
};

/* Replace the recorded working set of a snapshot with runs, in one
 * transaction: the pages a reader touched first after opening its memory
 * file, in first-touch order (a page should appear once; runs is not
 * sorted). count 0 removes the record. The record goes with the snapshot
 * when it is removed. Needs a store opened read-write (-EROFS otherwise);
 * -ENOENT if there is no such snapshot, -EINVAL if a run is empty or
 * reaches past the end of the memory file. */
SNAPFS_API int snapfs_working_set_save(struct snapfs_store *store, int64_t snapshot_id,
			    const struct snapfs_page_run *runs, size_t count);

/* The recorded working set of a snapshot, in first-touch order: *ret_runs
 * is malloc'ed (NULL when count is 0), the caller frees it. A snapshot with
 * no record (or a store older than working sets) has count 0. Runs are
 * checked against the snapshot's file size: a record that reaches past it,
 * or an empty run, is -SNAPFS_ECORRUPT. */
SNAPFS_API int snapfs_working_set_get(struct snapfs_store *store, int64_t snapshot_id,
			   struct snapfs_page_run **ret_runs, size_t *ret_count);

/* What snapfs_working_set_lay_out() did. */
struct snapfs_ws_layout {
	uint64_t blobs;                    /* blobs that hold the working set */
	uint64_t moved;                    /* of them copied (0: laid out already) */
	uint64_t moved_bytes;              /* their stored bytes */
	uint64_t stretches_before;         /* places a prefetch in first-touch */
	uint64_t stretches_after;          /* order reads from (1: one read) */
};

/* Lay the working set of snapshot name out for its prefetch: copy the
 * blobs that hold it, in first-touch order, to the end of the newest pack
 * and point their rows there, in one transaction (the copies durable
 * first). Other snapshots that share a blob read it from its new place
 * too; the old copies are gaps that snapfs_gc() gives back. Readers
 * already open go on reading. A snapshot without a record, or one laid out
 * already, is left as it is (moved 0). Needs a store opened read-write;
 * -ENOENT if there is no such snapshot, -SNAPFS_ECORRUPT if a blob to copy
 * fails its checksum (nothing is changed then). */
SNAPFS_API int snapfs_working_set_lay_out(struct snapfs_store *store, const char *name,
			       struct snapfs_ws_layout *ret_layout);

/* --- process cores ------------------------------------------------------- */

/* true if snapshots of this format hold a process's address space (elf,
 * criu, pid: the memory-file offset is the virtual address), so that they
 * have a core file. */
SNAPFS_API bool snapfs_format_has_core(const char *format);

/* A snapshot as an ELF64 core file (ET_CORE) that gdb and other debuggers
 * read: ELF header, program headers and the notes (each thread's
 * NT_PRSTATUS and the other notes the capture recorded, NT_FILE from the
 * segments whose label is a path), built from the metadata, then one
 * PT_LOAD per segment (p_vaddr = the segment's start) whose bytes are read
 * through image, the snapshot's read path: nothing is copied. Its size is
 * the headers (rounded up to a page) plus the segments' sizes. The headers
 * count as data; the PT_LOAD contents are data and holes as in the memory
 * file, so SEEK_DATA / SEEK_HOLE and the data bytes are exact. */
struct snapfs_core;

/* Build the core of snap (a snapshot of a format snapfs_format_has_core()
 * names: -EOPNOTSUPP otherwise) over image, snap's image, which the core
 * borrows: close the core first. Notes that fail their checks are
 * -SNAPFS_ECORRUPT. */
SNAPFS_API int snapfs_core_open(struct snapfs_store *store, const struct snapfs_snapshot *snap,
		     struct snapfs_image *image, struct snapfs_core **ret_core);
SNAPFS_API void snapfs_core_close(struct snapfs_core *core);
SNAPFS_API uint64_t snapfs_core_size(const struct snapfs_core *core);
/* Bytes of data in the core file: its headers and the stored pages of its
 * PT_LOADs (st_blocks * 512, before rounding). */
SNAPFS_API uint64_t snapfs_core_data_bytes(const struct snapfs_core *core);
/* snapfs_image_read() for the core file: the count read, len unless the
 * file ends first, or a negative error (damage: -EIO, whole). */
SNAPFS_API ssize_t snapfs_core_read(struct snapfs_core *core, void *buf, size_t len, uint64_t off);
/* snapfs_image_seek() for the core file: SEEK_DATA / SEEK_HOLE. */
SNAPFS_API int64_t snapfs_core_seek(struct snapfs_core *core, uint64_t off, int whence);

/* --- export -------------------------------------------------------------- */

/* Write snapshot name to output as format: "raw" (the memory file, as
 * snapfs_restore() writes it) or "elf" (its core file, the bytes of
 * snapfs_core_read(); a snapshot without a core is -EOPNOTSUPP). Same
 * rules as snapfs_restore(): a regular output is written sparse through a
 * temporary file and renamed into place; "-" is standard output. -EINVAL
 * for an unknown format. */
SNAPFS_API int snapfs_export(struct snapfs_store *store, const char *name, const char *format,
		  const char *output, const struct snapfs_restore_opts *opts);

/* --- the picture --------------------------------------------------------- */

/* An SVG picture of snapshot name's address space (what `snapfs map`
 * writes and the mount's NAME/map.svg holds): segments to scale with large
 * gaps folded, coloured by kind, shaded by page state (stored, shared with
 * the parent, zero, not committed), pages changed against snapshot
 * against marked (NULL: none), labels, a legend and the figures.
 * *ret_text (ret_len bytes, NUL-terminated) is malloc'ed; the caller frees
 * it. */
SNAPFS_API int snapfs_map_svg(struct snapfs_store *store, const char *name, const char *against,
		   char **ret_text, size_t *ret_len);

/* --- userfaultfd page server --------------------------------------------- */

/* One region of a VMM's guest memory, as Firecracker's Uffd memory backend
 * describes it (GuestRegionUffdMapping): size bytes at host address base in
 * the VMM's address space hold the memory file's bytes from offset on. */
struct snapfs_uffd_region {
	uint64_t base;                /* base_host_virt_addr, page_size-aligned */
	uint64_t size;                /* bytes, a multiple of page_size */
	uint64_t offset;              /* in the memory file, 4 KiB-aligned */
	uint64_t page_size;           /* bytes: 4096, or a huge page size */
};

/* Parse the handshake's JSON text (len bytes, not NUL-terminated): an array
 * of objects with base_host_virt_addr, size, offset and page_size or
 * page_size_kib (whole numbers; other keys are skipped). page_size_kib holds
 * bytes, as Firecracker sends it whatever its name says; a value below 4096
 * is taken as KiB. Checks alignment, sizes and overlaps. *ret_regions is
 * malloc'ed (sorted by base), the caller frees it. -EPROTO with a message
 * naming the place on any fault. */
SNAPFS_API int snapfs_uffd_parse_regions(const char *text, size_t len,
			      struct snapfs_uffd_region **ret_regions, size_t *ret_count);

struct snapfs_uffd_opts {
	const struct snapfs_page_run *prefetch; /* copied in ahead of faults, in
	                                         * this order (a working set);
	                                         * NULL: nothing */
	size_t prefetch_count;
	volatile sig_atomic_t *cancel;          /* set: stop, -SNAPFS_ECANCELED */
	int handshake_timeout_ms;               /* 0: 10 s */
	unsigned fault_around_pages;            /* a fault on a 4 KiB data page
	                                         * brings in this many pages around
	                                         * it (a power of two up to 256,
	                                         * aligned in the memory file, within
	                                         * its region, not where the balloon
	                                         * took any back); 0:
	                                         * SNAPFS_UFFD_FAULT_AROUND; 1: the
	                                         * page alone */
};
/* Default fault-around: one blob's pages (decoded for the fault anyway). */
#define SNAPFS_UFFD_FAULT_AROUND 4u

/* What a page server did for one client (counted as it goes). */
struct snapfs_uffd_stats {
	uint64_t regions;             /* regions the client sent */
	uint64_t faults;              /* page faults read from the userfaultfd */
	uint64_t fault_pages;         /* of them answered with UFFDIO_COPY */
	uint64_t fault_zero_pages;    /* ... with a zero page (holes, zero pages,
	                               * removed ranges) */
	uint64_t fault_present;       /* found present already (prefetched): woken */
	uint64_t fault_around_pages;  /* pages copied in by fault-around (the
	                               * faulting ones included) */
	uint64_t prefetched_pages;    /* pages copied in ahead of faults */
	uint64_t prefetch_present;    /* prefetch pages that were there already */
	uint64_t prefetch_ms;         /* time the prefetch took */
	uint64_t removes;             /* UFFD_EVENT_REMOVE events */
	uint64_t removed_bytes;
	uint64_t poisoned_pages;      /* damaged pages: their readers get SIGBUS */
};

/* Serve image's memory to one VMM over conn_fd, a connected Unix stream
 * socket, with Firecracker's userfaultfd handler protocol: receive one
 * message of JSON regions (snapfs_uffd_parse_regions) with the userfaultfd
 * as SCM_RIGHTS, copy in opts->prefetch (from a thread of its own, while
 * faults are served), then answer every fault through the read path
 * (checksums checked) with UFFDIO_COPY, holes and zero pages with
 * UFFDIO_ZEROPAGE. A page that fails its checks is poisoned
 * (UFFDIO_POISON, Linux 6.6 and later; before, the client gets SIGBUS
 * from kill(2)): whoever touches it gets SIGBUS, never wrong bytes.
 * After UFFD_EVENT_REMOVE (a balloon's MADV_DONTNEED) a range reads as
 * zeros, like anonymous memory. Returns 0 when the client goes away (the
 * socket closes or its memory is gone), or a negative error (a bad
 * handshake: -EPROTO). *stats (may be NULL) is filled in either way.
 * conn_fd stays the caller's; the userfaultfd is closed on return. One
 * image may serve several clients at once, each from a thread of its own. */
SNAPFS_API int snapfs_uffd_serve(struct snapfs_image *image, int conn_fd,
		      const struct snapfs_uffd_opts *opts, struct snapfs_uffd_stats *stats);
