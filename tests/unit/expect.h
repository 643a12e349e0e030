/* SPDX-License-Identifier: MIT */
/*
 * A tiny test harness: EXPECT() records a failure with file and line and
 * goes on; test_main_result() gives the exit status meson test reads.
 */
#pragma once

#include <stdio.h>
#include <stdlib.h>

static int expect_failures;
static int expect_checks;

#define EXPECT(cond)                                                          \
	do {                                                                  \
		expect_checks++;                                              \
		if (!(cond)) {                                                \
			expect_failures++;                                    \
			fprintf(stderr, "%s:%d: expected %s\n", __FILE__,     \
				__LINE__, #cond);                             \
		}                                                             \
	} while (0)

#define EXPECT_OK(expr)                                                       \
	do {                                                                  \
		long long expect_rc_ = (long long)(expr);                     \
		expect_checks++;                                              \
		if (expect_rc_ < 0) {                                         \
			expect_failures++;                                    \
			fprintf(stderr, "%s:%d: %s failed: %lld (%s)\n",      \
				__FILE__, __LINE__, #expr, expect_rc_,        \
				snapfs_errmsg());                             \
		}                                                             \
	} while (0)

static inline int test_main_result(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, expect_checks, expect_failures);
	return expect_failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
