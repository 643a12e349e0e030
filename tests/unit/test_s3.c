// SPDX-License-Identifier: MIT
/*
 * The S3 client's parts that need no server (src/lib/s3.c): the AWS-style
 * INI lookups, the XML pages and error bodies, and s3_open's reading of
 * URLs, variables and files (s3_open sends nothing). Against radosgw:
 * tests/remote/test_s3_client.py.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expect.h"
#include "s3.h"
#include "snapfs.h"

static const char ini[] =
	"# comment\n"
	"[default]\n"
	"aws_access_key_id = AK1\n"
	"aws_secret_access_key=SK1\n"
	"\n"
	"[profile snapfs]\n"
	"; another comment\n"
	"region = eu-west-1  \n"
	"s3 =\n"
	"  addressing_style = virtual\n"
	"  max_concurrent_requests = 4\n"
	"endpoint_url = http://127.0.0.1:7480\n"
	"[ other ]\n"
	"addressing_style = wrong-place";

static void test_ini(void)
{
	char out[64];

	EXPECT(s3_ini_lookup(ini, strlen(ini), "default", "aws_access_key_id", out,
			     sizeof(out)) == 0 && strcmp(out, "AK1") == 0);
	EXPECT(s3_ini_lookup(ini, strlen(ini), "default", "aws_secret_access_key", out,
			     sizeof(out)) == 0 && strcmp(out, "SK1") == 0);
	EXPECT(s3_ini_lookup(ini, strlen(ini), "profile snapfs", "region", out,
			     sizeof(out)) == 0 && strcmp(out, "eu-west-1") == 0);
	EXPECT(s3_ini_lookup(ini, strlen(ini), "profile snapfs", "s3.addressing_style", out,
			     sizeof(out)) == 0 && strcmp(out, "virtual") == 0);
	EXPECT(s3_ini_lookup(ini, strlen(ini), "profile snapfs", "addressing_style", out,
			     sizeof(out)) == -ENOENT);
	/* the line after the nested block is back at the top level */
	EXPECT(s3_ini_lookup(ini, strlen(ini), "profile snapfs", "endpoint_url", out,
			     sizeof(out)) == 0 && strcmp(out, "http://127.0.0.1:7480") == 0);
	EXPECT(s3_ini_lookup(ini, strlen(ini), "other", "addressing_style", out,
			     sizeof(out)) == 0 && strcmp(out, "wrong-place") == 0);
	EXPECT(s3_ini_lookup(ini, strlen(ini), "default", "region", out, sizeof(out)) == -ENOENT);
	EXPECT(s3_ini_lookup(ini, strlen(ini), "profile snapfs", "endpoint_url", out, 8) ==
	       -ENAMETOOLONG);
	EXPECT(s3_ini_lookup("", 0, "default", "x", out, sizeof(out)) == -ENOENT);
}

struct seen {
	unsigned n;
	char keys[4][32];
	uint64_t sizes[4];
};

static int on_key(const char *key, uint64_t size, void *arg)
{
	struct seen *s = arg;

	if (s->n < 4) {
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
		s->sizes[s->n] = size;
	}
	s->n++;
	return 0;
}

static void test_xml(void)
{
	static const char page[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult>"
		"<Name>b</Name><Prefix>st/</Prefix><IsTruncated>true</IsTruncated>"
		"<NextContinuationToken>a/b=c+d</NextContinuationToken>"
		"<Contents><Key>st/a</Key><Size>10</Size></Contents>"
		"<Contents><Key>st/k 01+=&amp;%</Key><Size>4096</Size></Contents>"
		"<Contents><Key>x</Key><Size>1</Size></Contents>"	/* shorter than the prefix */
		"</ListBucketResult>";
	static const char error[] =
		"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>"
		"<Message>The specified key does not exist.</Message></Error>";
	struct seen seen = { 0 };
	struct s3_list_page pg = { .fn = on_key, .arg = &seen, .strip = 3 };

	EXPECT_OK(s3_parse_xml(page, strlen(page), &pg));
	EXPECT(seen.n == 2);
	EXPECT(strcmp(seen.keys[0], "a") == 0 && seen.sizes[0] == 10);
	EXPECT(strcmp(seen.keys[1], "k 01+=&%") == 0 && seen.sizes[1] == 4096);
	EXPECT(pg.truncated);
	EXPECT(pg.next_token && strcmp(pg.next_token, "a/b=c+d") == 0);
	free(pg.next_token);

	pg = (struct s3_list_page){ 0 };
	EXPECT_OK(s3_parse_xml(error, strlen(error), &pg));
	EXPECT(strcmp(pg.code, "NoSuchKey") == 0);
	EXPECT(strcmp(pg.message, "The specified key does not exist.") == 0);
	EXPECT(!pg.truncated && !pg.next_token);

	EXPECT(s3_parse_xml("<a><b></a>", 10, &pg) == -EIO);
	EXPECT(pg.next_token == NULL);
}

static void clear_env(void)
{
	static const char *const names[] = {
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "SNAPFS_S3_ADDRESSING",
		"SNAPFS_S3_TIMEOUT",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unsetenv(names[i]);
	setenv("HOME", "/nonexistent-snapfs-home", 1);
}

static void test_open(void)
{
	struct s3 *s3 = (struct s3 *)0x1;

	clear_env();
	EXPECT(s3_open("s3://bucket/p", &s3) == -EACCES);
	EXPECT(strstr(snapfs_errmsg(), "no aws credentials"));
	EXPECT(s3 == (struct s3 *)0x1);
	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-in-no-message", 1);
	EXPECT(s3_open("http://bucket/p", &s3) == -EINVAL);
	EXPECT(s3_open("s3:///p", &s3) == -EINVAL);
	EXPECT(s3_open("s3://bu cket/p", &s3) == -EINVAL);
	EXPECT(s3_open("s3://bucket/a/../b", &s3) == -EINVAL);
	EXPECT(!strstr(snapfs_errmsg(), "secret-in-no-message"));
	setenv("SNAPFS_S3_TIMEOUT", "soon", 1);
	EXPECT(s3_open("s3://bucket/p", &s3) == -EINVAL);
	EXPECT(strstr(snapfs_errmsg(), "SNAPFS_S3_TIMEOUT"));
	setenv("SNAPFS_S3_TIMEOUT", "0.5", 1);
	setenv("SNAPFS_S3_ADDRESSING", "sideways", 1);
	EXPECT(s3_open("s3://bucket/p", &s3) == -EINVAL);
	EXPECT(strstr(snapfs_errmsg(), "sideways"));
	unsetenv("SNAPFS_S3_ADDRESSING");
	setenv("AWS_ENDPOINT_URL", "ftp://host", 1);
	EXPECT(s3_open("s3://bucket/p", &s3) == -EINVAL);
	setenv("AWS_ENDPOINT_URL", "http://user:pw@host", 1);
	EXPECT(s3_open("s3://bucket/p", &s3) == -EINVAL);
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1/", 1);
	s3 = NULL;
	EXPECT_OK(s3_open("s3://bucket", &s3));
	EXPECT(s3 != NULL);
	s3_close(s3);
	EXPECT_OK(s3_open("s3://bucket/deep/prefix/", &s3));
	s3_close(s3);
	s3_close(NULL);
	clear_env();
}

int main(void)
{
	test_ini();
	test_xml();
	test_open();
	return test_main_result("test_s3");
}
