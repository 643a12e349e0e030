/* SPDX-License-Identifier: MIT */
/*
 * A small S3 client for remote stores: whole and ranged GET, PUT (with an
 * optional conditional create), HEAD, DELETE and a paginated list, on the
 * objects under one s3://BUCKET/PREFIX. HTTP through libcurl, signed with
 * libcurl's own AWS Signature Version 4; XML answers read with expat.
 *
 * Settings come from the environment and the files AWS tools read (see
 * s3_open). Every call returns 0 or a negative errno and records a detail
 * for snapfs_errmsg(); no message ever holds a credential.
 *
 * Thread safety: one struct s3 may be used by any number of threads at
 * once. Each call borrows a curl handle from a small pool (handles keep
 * their connections alive; DNS, TLS sessions and connections are shared);
 * s3_close must not race with calls in flight. libcurl runs with
 * CURLOPT_NOSIGNAL: a program that talks https should ignore SIGPIPE (a
 * peer that closes a TLS connection must not kill it).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct s3;

/*
 * Open the remote location url, "s3://BUCKET" or "s3://BUCKET/PREFIX";
 * keys given to the other calls are relative to PREFIX (a '/' is put
 * between them when PREFIX does not end with one).
 *
 * Endpoint: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else the profile's
 * endpoint_url in the config file, else https://s3.REGION.amazonaws.com.
 * Region: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's region,
 * else us-east-1.
 * Credentials: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+
 * AWS_SESSION_TOKEN), else the profile (AWS_PROFILE, default "default")
 * in AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials), then in
 * AWS_CONFIG_FILE (default ~/.aws/config, sections "[profile NAME]").
 * Addressing: SNAPFS_S3_ADDRESSING=path|virtual|auto, else the profile's
 * s3 addressing_style; auto (the default) is path-style with a custom
 * endpoint and virtual-hosted on AWS.
 * Time: SNAPFS_S3_TIMEOUT=SECONDS (default 30, decimals allowed) bounds
 * each call, retries included; past it the call fails with -EIO.
 *
 * On success *ret owns the client (free with s3_close). Nothing is sent
 * to the server here.
 */
int s3_open(const char *url, struct s3 **ret);
/* Free the client and its connections. Accepts NULL. */
void s3_close(struct s3 *s3);

/* Objects per ListObjectsV2 page (1..1000, default 1000); for tests. */
void s3_set_page_size(struct s3 *s3, unsigned keys);
/* The total time bound of each call in milliseconds (SNAPFS_S3_TIMEOUT). */
void s3_set_timeout_ms(struct s3 *s3, long ms);

/*
 * Read exactly len bytes of object key from offset off into buf. An object
 * that ends before off + len fails with -EIO (never fewer bytes), a missing
 * one with -ENOENT, refused credentials with -EACCES.
 */
int s3_get_range(struct s3 *s3, const char *key, uint64_t off, size_t len, void *buf);
/*
 * Store len bytes as object key. With if_absent the write is a conditional
 * create (If-None-Match: *): -EEXIST when key exists already.
 */
int s3_put(struct s3 *s3, const char *key, const void *data, size_t len, bool if_absent);
/* The size of object key in *ret_size (untouched on failure); -ENOENT if none. */
int s3_head(struct s3 *s3, const char *key, uint64_t *ret_size);
/* Delete object key (S3 answers success for a missing key too). */
int s3_delete(struct s3 *s3, const char *key);

/*
 * Call fn(key, size, arg) for every object whose key starts with prefix,
 * in key order, keys relative to the client's PREFIX; all pages are
 * fetched. A nonzero return from fn stops the listing and is returned.
 */
typedef int (*s3_list_fn)(const char *key, uint64_t size, void *arg);
int s3_list(struct s3 *s3, const char *prefix, s3_list_fn fn, void *arg);

/* Create the bucket of the client's URL (an empty PUT on the bucket, no
 * location body: for us-east-1 and radosgw). A bucket that is already the
 * caller's is success where the server says so (radosgw, us-east-1);
 * -EEXIST when the server answers 409 (taken, or yours elsewhere). */
int s3_create_bucket(struct s3 *s3);

/* ---- the parsers, exposed for the fuzz target ---- */

/*
 * Find key in [section] of an INI text as AWS tools write it (";" and "#"
 * comments, "key = value", nested "s3 =" blocks as "s3.key"). Copies the
 * value into out (size outsz, NUL-terminated). 0, or -ENOENT if absent.
 */
int s3_ini_lookup(const char *text, size_t len, const char *section, const char *key,
		  char *out, size_t outsz);

/* One parsed ListObjectsV2 page, or an error body (code/message). */
struct s3_list_page {
	s3_list_fn fn;		/* called for each <Contents> */
	void *arg;
	size_t strip;		/* bytes cut from each key's front (the store prefix) */
	int fn_rc;		/* first nonzero fn return */
	bool truncated;		/* <IsTruncated>true */
	char *next_token;	/* <NextContinuationToken>, malloc'd, or NULL */
	char code[64];		/* <Code> of an error body */
	char message[256];	/* <Message> of an error body */
};
/* Parse an XML body into page (fn may be NULL). 0, or -EIO if malformed.
 * Free page->next_token afterwards. */
int s3_parse_xml(const char *body, size_t len, struct s3_list_page *page);
