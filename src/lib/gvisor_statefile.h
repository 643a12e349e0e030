/* SPDX-License-Identifier: MIT */
/*
 * gVisor's state file (checkpoint.img): the "gVisorSF" magic, an 8-byte
 * big-endian length and that much JSON metadata, an HMAC-SHA256 of all
 * that, then the state stream cut in chunks, each flate-compressed, with an
 * HMAC per chunk when a key was set; since gVisor 2023 the metadata's
 * "compression" may say "none" instead: the stream as it is, or in
 * frames with HMACs (gvisor_statefile.c tells which eras write what).
 * gvisor_statefile reads the header, checks it and hands out the
 * decompressed stream in order.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct gvisor_statefile;

/* Open the state file on fd (borrowed, read from offset 0). key is the
 * HMAC key (key_len bytes; NULL: none). shown names the file in messages
 * (borrowed, must outlive the reader). A bad magic is -EINVAL; a wrong key
 * -EACCES; a compression snapfs does not know -EINVAL; anything else
 * wrong -SNAPFS_ECORRUPT; each with a message. */
int gvisor_statefile_open(int fd, const char *shown, const unsigned char *key,
			  size_t key_len, struct gvisor_statefile **ret_sf);
void gvisor_statefile_close(struct gvisor_statefile *sf);
/* The JSON metadata (NUL-terminated, owned by sf). */
const char *gvisor_statefile_metadata(const struct gvisor_statefile *sf);
/* Read up to len bytes of the stream: the count, 0 at its end, or
 * -errno with the message set. Fits gw_input's read. */
ssize_t gvisor_statefile_read(void *sf, unsigned char *buf, size_t len);
/* Decompressed bytes handed out so far. */
uint64_t gvisor_statefile_offset(const struct gvisor_statefile *sf);
