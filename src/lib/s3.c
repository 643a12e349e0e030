// SPDX-License-Identifier: MIT
/*
 * The S3 client of remote stores (s3.h): settings from the AWS variables
 * and files, requests through a small pool of libcurl handles signed with
 * libcurl's AWS SigV4, retries with exponential backoff inside one time
 * bound per call, XML answers (lists, error bodies) read with expat.
 */
#include "s3.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <expat.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"

#define S3_POOL_MAX 16			/* idle curl handles kept */
#define S3_TIMEOUT_MS_DEFAULT 30000	/* SNAPFS_S3_TIMEOUT */
#define S3_CONNECT_MS_MAX 5000		/* one connection attempt */
#define S3_BACKOFF_MS_FIRST 50
#define S3_BACKOFF_MS_MAX 2000
#define S3_ERROR_BODY_MAX (64u << 10)
#define S3_LIST_BODY_MAX (16u << 20)
#define S3_INI_FILE_MAX (1u << 20)

struct s3 {
	char *bucket;
	char *prefix;		/* "" or ending in '/' */
	char *base;		/* URL of the bucket: http://host:port/bucket or https://bucket.host */
	char *sigv4;		/* "aws:amz:REGION:s3" */
	char *userpwd;		/* "KEY:SECRET", wiped on close */
	char *token_header;	/* "x-amz-security-token: ...", or NULL */
	char *ca_bundle;	/* AWS_CA_BUNDLE / ca_bundle: PEM file of the CAs to trust
				 * for https; NULL: the system's (libcurl's default) */
	long timeout_ms;	/* bound of one call, retries included */
	unsigned page_keys;	/* max-keys of a list page */
	CURLSH *share;		/* DNS, TLS sessions and connections of all handles */
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL *pool[S3_POOL_MAX];	/* idle handles, their connections kept alive */
	unsigned pool_len;
};

/* ---------------------------------------------------------------- strings */

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

static void str_wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static bool unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Percent-encode s as SigV4 wants it (RFC 3986 unreserved kept); '/' kept
 * when keep_slash. malloc'd, or NULL. */
static char *uri_encode(const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(strlen(s) * 3 + 1), *p = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (unreserved(c) || (keep_slash && c == '/')) {
			*p++ = (char)c;
		} else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	return out;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ------------------------------------------------------------ INI parser */

static void trim(const char **b, const char **e)
{
	while (*b < *e && isspace((unsigned char)**b))
		(*b)++;
	while (*e > *b && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

static bool span_is(const char *b, const char *e, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(e - b) == n && strncasecmp(b, s, n) == 0;
}

int s3_ini_lookup(const char *text, size_t len, const char *section, const char *key,
		  char *out, size_t outsz)
{
	const char *p = text, *end = text + len;
	const char *nest = NULL, *nest_end = NULL;	/* "s3" of a nested "s3 =" block */
	bool in_section = false;

	while (p < end) {
		const char *line = p, *eol = memchr(p, '\n', (size_t)(end - p));
		const char *b, *e, *eq, *kb, *ke, *vb, *ve;
		bool indented;

		if (!eol)
			eol = end;
		p = eol < end ? eol + 1 : end;
		indented = line < eol && (*line == ' ' || *line == '\t');
		b = line;
		e = eol;
		trim(&b, &e);
		if (b == e || *b == '#' || *b == ';')
			continue;
		if (*b == '[') {
			const char *sb = b + 1, *se = memchr(sb, ']', (size_t)(e - sb));

			if (!se)
				continue;
			trim(&sb, &se);
			in_section = span_is(sb, se, section);
			nest = NULL;
			continue;
		}
		if (!indented)
			nest = NULL;
		eq = memchr(b, '=', (size_t)(e - b));
		if (!eq || !in_section)
			continue;
		kb = b;
		ke = eq;
		vb = eq + 1;
		ve = e;
		trim(&kb, &ke);
		trim(&vb, &ve);
		if (!indented && vb == ve) {	/* "s3 =" opens a nested block */
			nest = kb;
			nest_end = ke;
			continue;
		}
		if (indented && nest) {
			size_t nl = (size_t)(nest_end - nest), kl = strlen(key);

			if (!(kl > nl + 1 && strncasecmp(key, nest, nl) == 0 && key[nl] == '.' &&
			      span_is(kb, ke, key + nl + 1)))
				continue;
		} else if (!span_is(kb, ke, key)) {
			continue;
		}
		if ((size_t)(ve - vb) >= outsz)
			return -ENAMETOOLONG;
		memcpy(out, vb, (size_t)(ve - vb));
		out[ve - vb] = '\0';
		return 0;
	}
	return -ENOENT;
}

/* Read file path (up to S3_INI_FILE_MAX) and look key up in section.
 * -ENOENT when the file or the key is absent. */
static int ini_file_lookup(const char *path, const char *section, const char *key,
			   char *out, size_t outsz)
{
	char *text;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	text = malloc(S3_INI_FILE_MAX);
	if (!text) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, text, S3_INI_FILE_MAX);
	rc = n < 0 ? -errno : s3_ini_lookup(text, (size_t)n, section, key, out, outsz);
	explicit_bzero(text, S3_INI_FILE_MAX);
	free(text);
	close(fd);
	return rc;
}

/* ------------------------------------------------------------ XML parser */

struct xml_state {
	struct s3_list_page *page;
	XML_Parser parser;
	char path[4][32];	/* names of the open elements, up to 4 deep */
	int depth;
	char text[2048];	/* character data of the innermost element */
	size_t text_len;
	bool text_long;
	char key[1100];		/* <Key> of the current <Contents> */
	bool have_key;
	uint64_t size;
};

static void XMLCALL xml_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct xml_state *x = ud;

	(void)attrs;
	if (x->depth < 4)
		snprintf(x->path[x->depth], sizeof(x->path[0]), "%s", name);
	x->depth++;
	x->text_len = 0;
	x->text_long = false;
	if (x->depth == 2 && strcmp(name, "Contents") == 0) {
		x->have_key = false;
		x->size = 0;
	}
}

static void XMLCALL xml_text(void *ud, const XML_Char *s, int len)
{
	struct xml_state *x = ud;

	if (x->text_len + (size_t)len >= sizeof(x->text)) {
		x->text_long = true;
		return;
	}
	memcpy(x->text + x->text_len, s, (size_t)len);
	x->text_len += (size_t)len;
}

static void xml_contents_end(struct xml_state *x)
{
	struct s3_list_page *pg = x->page;
	int rc;

	if (!x->have_key || !pg->fn || pg->fn_rc)
		return;
	if (strlen(x->key) < pg->strip)
		return;
	rc = pg->fn(x->key + pg->strip, x->size, pg->arg);
	if (rc) {
		pg->fn_rc = rc;
		XML_StopParser(x->parser, XML_FALSE);
	}
}

static void XMLCALL xml_end(void *ud, const XML_Char *name)
{
	struct xml_state *x = ud;
	struct s3_list_page *pg = x->page;
	const char *parent = x->depth >= 2 && x->depth <= 5 ? x->path[x->depth - 2] : "";
	char *endp;

	x->text[x->text_len] = '\0';
	if (x->depth == 3 && strcmp(parent, "Contents") == 0) {
		if (strcmp(name, "Key") == 0 && !x->text_long &&
		    x->text_len < sizeof(x->key)) {
			memcpy(x->key, x->text, x->text_len + 1);
			x->have_key = true;
		} else if (strcmp(name, "Size") == 0) {
			x->size = strtoull(x->text, &endp, 10);
		}
	} else if (x->depth == 2 && strcmp(name, "Contents") == 0) {
		xml_contents_end(x);
	} else if (x->depth == 2 && strcmp(name, "IsTruncated") == 0) {
		pg->truncated = strcmp(x->text, "true") == 0;
	} else if (x->depth == 2 && strcmp(name, "NextContinuationToken") == 0 &&
		   !x->text_long && !pg->next_token) {
		pg->next_token = strdup(x->text);
	} else if (x->depth == 2 && strcmp(parent, "Error") == 0) {
		if (strcmp(name, "Code") == 0)
			snprintf(pg->code, sizeof(pg->code), "%.63s", x->text);
		else if (strcmp(name, "Message") == 0)
			snprintf(pg->message, sizeof(pg->message), "%.255s", x->text);
	}
	x->depth--;
	x->text_len = 0;
}

int s3_parse_xml(const char *body, size_t len, struct s3_list_page *page)
{
	struct xml_state *x;
	enum XML_Status st;
	int rc = 0;

	page->truncated = false;
	page->next_token = NULL;
	page->fn_rc = 0;
	page->code[0] = page->message[0] = '\0';
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->page = page;
	x->parser = XML_ParserCreate("UTF-8");
	if (!x->parser) {
		free(x);
		return -ENOMEM;
	}
	XML_SetUserData(x->parser, x);
	XML_SetElementHandler(x->parser, xml_start, xml_end);
	XML_SetCharacterDataHandler(x->parser, xml_text);
	st = XML_Parse(x->parser, body, len > INT32_MAX ? INT32_MAX : (int)len, XML_TRUE);
	if (st == XML_STATUS_ERROR && !page->fn_rc)
		rc = error_set(-EIO, "malformed xml at line %lu: %s",
			       (unsigned long)XML_GetCurrentLineNumber(x->parser),
			       XML_ErrorString(XML_GetErrorCode(x->parser)));
	XML_ParserFree(x->parser);
	free(x);
	if (rc) {
		free(page->next_token);
		page->next_token = NULL;
	}
	return rc;
}

/* ---------------------------------------------------------------- settings */

struct aws_files {
	const char *profile;
	char creds[4096];	/* path of the shared credentials file */
	char config[4096];	/* path of the config file */
	char config_section[300];	/* "default" or "profile NAME" */
};

static void aws_files_init(struct aws_files *f)
{
	const char *home = getenv("HOME"), *v;

	f->profile = getenv("AWS_PROFILE");
	if (!f->profile || !*f->profile)
		f->profile = "default";
	v = getenv("AWS_SHARED_CREDENTIALS_FILE");
	if (v && *v)
		snprintf(f->creds, sizeof(f->creds), "%s", v);
	else
		snprintf(f->creds, sizeof(f->creds), "%s/.aws/credentials", home ? home : "");
	v = getenv("AWS_CONFIG_FILE");
	if (v && *v)
		snprintf(f->config, sizeof(f->config), "%s", v);
	else
		snprintf(f->config, sizeof(f->config), "%s/.aws/config", home ? home : "");
	if (strcmp(f->profile, "default") == 0)
		snprintf(f->config_section, sizeof(f->config_section), "default");
	else
		snprintf(f->config_section, sizeof(f->config_section), "profile %.250s",
			 f->profile);
}

/* The first non-empty environment variable of names (NULL-terminated), else
 * key of the config file's profile, copied into out. 0 or -ENOENT. */
static int setting(const struct aws_files *f, const char *const *names, const char *key,
		   char *out, size_t outsz)
{
	for (; *names; names++) {
		const char *v = getenv(*names);

		if (v && *v) {
			if (strlen(v) >= outsz)
				return -ENAMETOOLONG;
			strcpy(out, v);
			return 0;
		}
	}
	if (!key)
		return -ENOENT;
	return ini_file_lookup(f->config, f->config_section, key, out, outsz) == 0 ? 0 : -ENOENT;
}

static int load_credentials(struct s3 *s3, const struct aws_files *f)
{
	char ak[256], sk[256], tok[4096];
	const char *e_ak = getenv("AWS_ACCESS_KEY_ID"), *e_sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *e_tok = getenv("AWS_SESSION_TOKEN");
	int rc = 0;

	tok[0] = '\0';
	if (e_ak && *e_ak && e_sk && *e_sk) {
		if (strlen(e_ak) >= sizeof(ak) || strlen(e_sk) >= sizeof(sk) ||
		    (e_tok && strlen(e_tok) >= sizeof(tok)))
			return error_set(-EINVAL, "aws credentials in the environment are too long");
		strcpy(ak, e_ak);
		strcpy(sk, e_sk);
		if (e_tok)
			strcpy(tok, e_tok);
	} else if (ini_file_lookup(f->creds, f->profile, "aws_access_key_id", ak, sizeof(ak)) == 0 &&
		   ini_file_lookup(f->creds, f->profile, "aws_secret_access_key", sk,
				   sizeof(sk)) == 0) {
		ini_file_lookup(f->creds, f->profile, "aws_session_token", tok, sizeof(tok));
	} else if (ini_file_lookup(f->config, f->config_section, "aws_access_key_id", ak,
				   sizeof(ak)) == 0 &&
		   ini_file_lookup(f->config, f->config_section, "aws_secret_access_key", sk,
				   sizeof(sk)) == 0) {
		ini_file_lookup(f->config, f->config_section, "aws_session_token", tok,
				sizeof(tok));
	} else {
		return error_set(-EACCES, "no aws credentials for profile '%s' "
				 "(AWS_ACCESS_KEY_ID, '%s' or '%s')", f->profile, f->creds,
				 f->config);
	}
	if (strchr(ak, ':'))
		rc = error_set(-EINVAL, "aws access key id holds a ':'");
	else if (!(s3->userpwd = str_printf("%s:%s", ak, sk)) ||
		 (tok[0] && !(s3->token_header = str_printf("x-amz-security-token: %s", tok))))
		rc = -ENOMEM;
	explicit_bzero(sk, sizeof(sk));
	explicit_bzero(tok, sizeof(tok));
	return rc;
}

/* Split "s3://BUCKET/PREFIX". */
static int parse_url(struct s3 *s3, const char *url)
{
	const char *b, *slash, *p;
	size_t plen;

	if (strncmp(url, "s3://", 5) != 0)
		return error_set(-EINVAL, "remote '%s': not an s3://BUCKET/PREFIX address", url);
	b = url + 5;
	slash = strchr(b, '/');
	if (slash == b || !*b)
		return error_set(-EINVAL, "remote '%s': no bucket name", url);
	s3->bucket = slash ? strndup(b, (size_t)(slash - b)) : strdup(b);
	if (!s3->bucket)
		return -ENOMEM;
	for (p = s3->bucket; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '.' || *p == '_'))
			return error_set(-EINVAL, "remote '%s': invalid bucket name", url);
	p = slash ? slash + 1 : "";
	while (*p == '/')
		p++;
	plen = strlen(p);
	if (strstr(p, "//") || strcmp(p, "..") == 0 || strncmp(p, "../", 3) == 0 ||
	    strstr(p, "/../") || (plen >= 3 && strcmp(p + plen - 3, "/..") == 0))
		return error_set(-EINVAL, "remote '%s': invalid prefix", url);
	s3->prefix = str_printf("%s%s", p, plen && p[plen - 1] != '/' ? "/" : "");
	return s3->prefix ? 0 : -ENOMEM;
}

/* 1 for path-style, 0 for virtual-hosted. */
static int addressing(const struct aws_files *f, bool custom_endpoint)
{
	char style[32];

	if (setting(f, (const char *const[]){ "SNAPFS_S3_ADDRESSING", NULL }, "s3.addressing_style",
		    style, sizeof(style)) != 0)
		strcpy(style, "auto");
	if (strcasecmp(style, "path") == 0)
		return 1;
	if (strcasecmp(style, "virtual") == 0)
		return 0;
	if (strcasecmp(style, "auto") == 0)
		return custom_endpoint ? 1 : 0;
	return error_set(-EINVAL, "addressing style '%s': not path, virtual or auto", style);
}

static int build_base(struct s3 *s3, const struct aws_files *f, const char *region)
{
	char endpoint[1024];
	const char *hostport;
	bool custom;
	size_t n;
	int path;

	custom = setting(f, (const char *const[]){ "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", NULL },
			 "endpoint_url", endpoint, sizeof(endpoint)) == 0;
	if (!custom)
		snprintf(endpoint, sizeof(endpoint), "https://s3.%s.amazonaws.com", region);
	n = strlen(endpoint);
	while (n && endpoint[n - 1] == '/')
		endpoint[--n] = '\0';
	if (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0)
		return error_set(-EINVAL, "endpoint '%s': not an http:// or https:// url", endpoint);
	hostport = strstr(endpoint, "://") + 3;
	if (!*hostport || strchr(hostport, '/') || strchr(hostport, '@') || strchr(hostport, '?'))
		return error_set(-EINVAL, "endpoint '%s': want SCHEME://HOST[:PORT]", endpoint);
	path = addressing(f, custom);
	if (path < 0)
		return path;
	if (!path && strchr(s3->bucket, '.') && strncmp(endpoint, "https", 5) == 0)
		path = 1;	/* a dotted bucket breaks the wildcard certificate */
	if (path)
		s3->base = str_printf("%s/%s", endpoint, s3->bucket);
	else
		s3->base = str_printf("%.*s%s.%s", (int)(hostport - endpoint), endpoint,
				      s3->bucket, hostport);
	return s3->base ? 0 : -ENOMEM;
}

static long timeout_from_env(void)
{
	const char *v = getenv("SNAPFS_S3_TIMEOUT");
	char *end;
	double s;

	if (!v || !*v)
		return S3_TIMEOUT_MS_DEFAULT;
	s = strtod(v, &end);
	if (*end || !(s > 0) || s > 86400)
		return error_set(-EINVAL, "SNAPFS_S3_TIMEOUT '%s': not a number of seconds "
				 "in (0, 86400]", v);
	return (long)(s * 1000) > 0 ? (long)(s * 1000) : 1;
}

/* ------------------------------------------------------------ curl glue */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
	struct s3 *s3 = ud;

	(void)h;
	(void)access;
	pthread_mutex_lock(&s3->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
	struct s3 *s3 = ud;

	(void)h;
	pthread_mutex_unlock(&s3->share_locks[data]);
}

static CURL *pool_get(struct s3 *s3)
{
	CURL *h = NULL;

	pthread_mutex_lock(&s3->pool_lock);
	if (s3->pool_len)
		h = s3->pool[--s3->pool_len];
	pthread_mutex_unlock(&s3->pool_lock);
	return h ? h : curl_easy_init();
}

static void pool_put(struct s3 *s3, CURL *h)
{
	pthread_mutex_lock(&s3->pool_lock);
	if (s3->pool_len < S3_POOL_MAX) {
		s3->pool[s3->pool_len++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&s3->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

int s3_open(const char *url, struct s3 **ret)
{
	struct aws_files f;
	char region[128];
	char ca_bundle[4096];
	struct s3 *s3;
	int rc, i;

	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return error_set(-EIO, "libcurl: %s", curl_easy_strerror(curl_init_rc));
	s3 = calloc(1, sizeof(*s3));
	if (!s3)
		return -ENOMEM;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&s3->share_locks[i], NULL);
	pthread_mutex_init(&s3->pool_lock, NULL);
	s3->page_keys = 1000;
	aws_files_init(&f);
	rc = parse_url(s3, url);
	if (rc)
		goto out_close;
	if (setting(&f, (const char *const[]){ "AWS_REGION", "AWS_DEFAULT_REGION", NULL }, "region",
		    region, sizeof(region)) != 0)
		strcpy(region, "us-east-1");
	for (i = 0; region[i]; i++)
		if (!(isalnum((unsigned char)region[i]) || region[i] == '-')) {
			rc = error_set(-EINVAL, "aws region '%s': invalid", region);
			goto out_close;
		}
	/* As the AWS tools: a CA bundle for https other than the system's
	 * (a private endpoint's own CA). */
	if (setting(&f, (const char *const[]){ "AWS_CA_BUNDLE", NULL }, "ca_bundle", ca_bundle,
		    sizeof(ca_bundle)) == 0) {
		if (access(ca_bundle, R_OK) < 0) {
			rc = error_set(-errno, "AWS_CA_BUNDLE '%s': %s", ca_bundle, errno_text(errno));
			goto out_close;
		}
		s3->ca_bundle = strdup(ca_bundle);
		if (!s3->ca_bundle) {
			rc = -ENOMEM;
			goto out_close;
		}
	}
	s3->timeout_ms = timeout_from_env();
	if (s3->timeout_ms < 0) {
		rc = (int)s3->timeout_ms;
		goto out_close;
	}
	rc = build_base(s3, &f, region);
	if (rc)
		goto out_close;
	rc = load_credentials(s3, &f);
	if (rc)
		goto out_close;
	s3->sigv4 = str_printf("aws:amz:%s:s3", region);
	s3->share = curl_share_init();
	if (!s3->sigv4 || !s3->share) {
		rc = -ENOMEM;
		goto out_close;
	}
	curl_share_setopt(s3->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(s3->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(s3->share, CURLSHOPT_USERDATA, s3);
	curl_share_setopt(s3->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(s3->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(s3->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	*ret = s3;
	return 0;

out_close:
	s3_close(s3);
	return error_prefix(rc, "remote '%s'", url);
}

void s3_close(struct s3 *s3)
{
	int i;

	if (!s3)
		return;
	for (i = 0; i < (int)s3->pool_len; i++)
		curl_easy_cleanup(s3->pool[i]);
	if (s3->share)
		curl_share_cleanup(s3->share);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&s3->share_locks[i]);
	pthread_mutex_destroy(&s3->pool_lock);
	str_wipe_free(s3->userpwd);
	str_wipe_free(s3->token_header);
	free(s3->ca_bundle);
	free(s3->sigv4);
	free(s3->base);
	free(s3->prefix);
	free(s3->bucket);
	free(s3);
}

void s3_set_page_size(struct s3 *s3, unsigned keys)
{
	s3->page_keys = keys < 1 ? 1 : keys > 1000 ? 1000 : keys;
}

void s3_set_timeout_ms(struct s3 *s3, long ms)
{
	s3->timeout_ms = ms < 1 ? 1 : ms;
}

/* ------------------------------------------------------------ requests */

enum s3_method { S3_GET, S3_PUT, S3_HEAD, S3_DELETE };
static const char *const method_names[] = { "GET", "PUT", "HEAD", "DELETE" };

struct s3_req {
	enum s3_method method;
	const char *key;	/* for messages: the object's key (relative), or NULL */
	char *url;		/* owned */
	struct curl_slist *headers;	/* owned */
	const char *up;		/* PUT body */
	size_t up_len, up_pos;
	char *buf;		/* ranged GET: the caller's buffer */
	size_t buf_cap;
	size_t body_max;	/* other bodies: bound of what is kept */
	unsigned attempts;	/* requests sent */
	/* the answer, reset for each attempt */
	CURL *h;
	long status;
	size_t got;		/* bytes into buf */
	bool overflow;		/* more than buf_cap bytes came */
	char *body;		/* malloc'd: list page or error body */
	size_t body_len;
	char content_range[128];
	int64_t content_length;	/* -1 if none came */
};

static size_t on_write(char *data, size_t size, size_t n, void *ud)
{
	struct s3_req *r = ud;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
	if (r->buf && (status == 200 || status == 206)) {
		if (len > r->buf_cap - r->got) {
			r->overflow = true;
			return 0;	/* abort: never more than asked */
		}
		memcpy(r->buf + r->got, data, len);
		r->got += len;
		return len;
	}
	if (r->body_len + len > (r->buf ? S3_ERROR_BODY_MAX : r->body_max)) {
		r->overflow = true;
		return 0;
	}
	{
		char *nb = realloc(r->body, r->body_len + len + 1);

		if (!nb)
			return 0;
		r->body = nb;
	}
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
	struct s3_req *r = ud;
	size_t len = size * n;

	if (len > 12 && strncmp(data, "HTTP/", 5) == 0) {
		const char *sp = memchr(data, ' ', len);
		long status = sp ? strtol(sp + 1, NULL, 10) : 0;

		/* radosgw may answer an error before it reads the request's
		 * body, and then read that body as the next request: never
		 * reuse a connection after an error. */
		if (status >= 300)
			curl_easy_setopt(r->h, CURLOPT_FORBID_REUSE, 1L);
	} else if (len > 14 && strncasecmp(data, "Content-Range:", 14) == 0) {
		size_t l = len - 14 < sizeof(r->content_range) ? len - 14
							: sizeof(r->content_range) - 1;

		memcpy(r->content_range, data + 14, l);
		r->content_range[l] = '\0';
	} else if (len > 15 && strncasecmp(data, "Content-Length:", 15) == 0) {
		char *end;
		long long v = strtoll(data + 15, &end, 10);

		if (end != data + 15 && v >= 0)
			r->content_length = v;
	}
	return len;
}

static size_t on_read(char *data, size_t size, size_t n, void *ud)
{
	struct s3_req *r = ud;
	size_t len = size * n;

	if (len > r->up_len - r->up_pos)
		len = r->up_len - r->up_pos;
	memcpy(data, r->up + r->up_pos, len);
	r->up_pos += len;
	return len;
}

/* libcurl rewinds the body when it sends the request again by itself (a
 * kept-alive connection found closed). */
static int on_seek(void *ud, curl_off_t offset, int origin)
{
	struct s3_req *r = ud;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > r->up_len)
		return CURL_SEEKFUNC_CANTSEEK;
	r->up_pos = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

static void req_reset_answer(struct s3_req *r)
{
	r->status = 0;
	r->got = 0;
	r->overflow = false;
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
	r->content_range[0] = '\0';
	r->content_length = -1;
	r->up_pos = 0;
}

static void req_release(struct s3_req *r)
{
	free(r->url);
	curl_slist_free_all(r->headers);
	free(r->body);
}

static bool retryable_curl(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static bool retryable_status(long status)
{
	return status == 500 || status == 502 || status == 503 || status == 504 ||
	       status == 408 || status == 429;
}

static void setup_handle(struct s3 *s3, struct s3_req *r, long remaining_ms, char *errbuf)
{
	CURL *h = r->h;

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, r->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (s3->ca_bundle)
		curl_easy_setopt(h, CURLOPT_CAINFO, s3->ca_bundle);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s3->sigv4);
	curl_easy_setopt(h, CURLOPT_USERPWD, s3->userpwd);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(h, CURLOPT_SHARE, s3->share);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, remaining_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 remaining_ms < S3_CONNECT_MS_MAX ? remaining_ms : S3_CONNECT_MS_MAX);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	switch (r->method) {
	case S3_HEAD:
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
		break;
	case S3_DELETE:
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
		break;
	case S3_PUT:
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, r);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->up_len);
		/* No wait for "100 Continue": an "Expect:" header to remove it
		 * would be signed by libcurl 7.88 but not sent. */
		curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);
		break;
	case S3_GET:
		break;
	}
}

/* "what" of messages: "s3 GET 'bucket/prefix/key'". */
static int req_error(struct s3 *s3, const struct s3_req *r, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int req_error(struct s3 *s3, const struct s3_req *r, int rc, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return error_set(rc, "s3 %s 's3://%s/%s%s': %s", method_names[r->method], s3->bucket,
			 s3->prefix, r->key ? r->key : "", why);
}

/* The final HTTP status as an errno (after retries). */
static int status_error(struct s3 *s3, struct s3_req *r)
{
	struct s3_list_page err = { 0 };
	int rc;

	if (r->body && r->body_len)
		s3_parse_xml(r->body, r->body_len, &err);
	free(err.next_token);
	error_clear();
	switch (r->status) {
	case 404:
		rc = -ENOENT;
		break;
	case 401:
	case 403:
		rc = -EACCES;
		break;
	case 412:
		rc = -EEXIST;
		break;
	case 409:
		rc = r->key ? -EIO : -EEXIST;
		break;
	default:
		rc = -EIO;
		break;
	}
	return req_error(s3, r, rc, "%s (HTTP %ld%s%s)", errno_text(-rc), r->status,
			 err.code[0] ? " " : "", err.code);
}

/*
 * Send r until it gets an answer that is not worth retrying, or the time
 * bound is spent (-EIO). 0 with r->status 2xx; otherwise a negative errno
 * with the detail recorded.
 */
static int s3_perform(struct s3 *s3, struct s3_req *r)
{
	long start = now_ms(), deadline = start + s3->timeout_ms, backoff = S3_BACKOFF_MS_FIRST;
	char errbuf[CURL_ERROR_SIZE], last[CURL_ERROR_SIZE + 64];
	unsigned attempt;
	int rc;

	r->h = pool_get(s3);
	if (!r->h)
		return -ENOMEM;
	for (attempt = 1;; attempt++) {
		long remaining = deadline - now_ms(), wait;
		CURLcode c;

		if (remaining <= 0)
			remaining = 1;
		req_reset_answer(r);
		r->attempts = attempt;
		errbuf[0] = '\0';
		setup_handle(s3, r, remaining, errbuf);
		c = curl_easy_perform(r->h);
		curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &r->status);
		if (c == CURLE_WRITE_ERROR && r->overflow) {
			rc = req_error(s3, r, -EIO, "answer longer than asked");
			goto out_put;
		}
		if (c == CURLE_WRITE_ERROR) {
			rc = -ENOMEM;
			goto out_put;
		}
		if (c == CURLE_OK && !retryable_status(r->status)) {
			rc = r->status >= 200 && r->status < 300 ? 0 : status_error(s3, r);
			goto out_put;
		}
		if (c != CURLE_OK && !retryable_curl(c)) {
			rc = req_error(s3, r, -EIO, "%s", errbuf[0] ? errbuf : curl_easy_strerror(c));
			goto out_put;
		}
		if (c != CURLE_OK)
			snprintf(last, sizeof(last), "%s", errbuf[0] ? errbuf : curl_easy_strerror(c));
		else
			snprintf(last, sizeof(last), "HTTP %ld", r->status);
		/* Wait backoff, +- a quarter at random, cut at the bound: the
		 * last attempt goes out when the time is up. */
		wait = backoff - backoff / 4 + (long)(random() % (backoff / 2 + 1));
		remaining = deadline - now_ms();
		if (remaining <= 0) {
			rc = req_error(s3, r, -EIO, "gave up after %u attempts in %.1f s "
				       "(SNAPFS_S3_TIMEOUT): %s", attempt,
				       (double)(now_ms() - start) / 1000, last);
			goto out_put;
		}
		if (wait > remaining)
			wait = remaining;
		usleep((useconds_t)wait * 1000);
		backoff = backoff * 2 > S3_BACKOFF_MS_MAX ? S3_BACKOFF_MS_MAX : backoff * 2;
	}
out_put:
	curl_easy_reset(r->h);	/* drop pointers into r and the caller's buffers */
	pool_put(s3, r->h);
	r->h = NULL;
	return rc;
}

/* A request for object key (relative), with the headers every call sends. */
static int req_init(struct s3 *s3, struct s3_req *r, enum s3_method method, const char *key)
{
	char *full, *enc;

	memset(r, 0, sizeof(*r));
	r->method = method;
	r->key = key;
	full = str_printf("%s%s", s3->prefix, key);
	enc = full ? uri_encode(full, true) : NULL;
	free(full);
	if (!enc)
		return -ENOMEM;
	r->url = str_printf("%s/%s", s3->base, enc);
	free(enc);
	if (!r->url)
		return -ENOMEM;
	return 0;
}

static int req_header(struct s3_req *r, const char *h)
{
	struct curl_slist *l = curl_slist_append(r->headers, h);

	if (!l)
		return -ENOMEM;
	r->headers = l;
	return 0;
}

static int req_common_headers(struct s3 *s3, struct s3_req *r)
{
	int rc = req_header(r, "x-amz-content-sha256: UNSIGNED-PAYLOAD");

	if (!rc && s3->token_header)
		rc = req_header(r, s3->token_header);
	return rc;
}

/* ------------------------------------------------------------ operations */

/* Check "bytes A-B/TOTAL" against the range asked for. */
static int check_range(struct s3 *s3, struct s3_req *r, uint64_t off, size_t len)
{
	uint64_t a, b, total;
	const char *cr = r->content_range;

	while (*cr == ' ')
		cr++;
	if (r->status == 200) {	/* the whole object came: fine if it is exactly it */
		if (off == 0 && r->got == len)
			return 0;
		return req_error(s3, r, -EIO, "server ignored the range: got %zu bytes, "
				 "wanted %zu at %" PRIu64, r->got, len, off);
	}
	if (sscanf(cr, "bytes %" SCNu64 "-%" SCNu64 "/%" SCNu64, &a, &b, &total) != 3 || a != off)
		return req_error(s3, r, -EIO, "unexpected content-range '%.60s' for bytes "
				 "%" PRIu64 "-%" PRIu64, cr, off, off + len - 1);
	if (b != off + len - 1 || r->got != len)
		return req_error(s3, r, -EIO, "object is shorter (%" PRIu64 " bytes) than "
				 "the range %" PRIu64 "-%" PRIu64 " read", total, off,
				 off + len - 1);
	return 0;
}

int s3_get_range(struct s3 *s3, const char *key, uint64_t off, size_t len, void *buf)
{
	struct s3_req r;
	char range[80];
	int rc;

	if (len == 0)
		return 0;
	rc = req_init(s3, &r, S3_GET, key);
	snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-%" PRIu64, off, off + len - 1);
	if (!rc)
		rc = req_common_headers(s3, &r);
	if (!rc)
		rc = req_header(&r, range);
	if (rc)
		goto out_release;
	r.buf = buf;
	r.buf_cap = len;
	rc = s3_perform(s3, &r);
	if (rc == -EIO && r.status == 416)
		rc = req_error(s3, &r, -EIO, "object ends before byte %" PRIu64 " (HTTP 416)", off);
	if (!rc)
		rc = check_range(s3, &r, off, len);
out_release:
	req_release(&r);
	return rc;
}

/* True when object key holds exactly data: a conditional create that was
 * sent again after a lost answer finds its own first write. */
static bool same_object(struct s3 *s3, const char *key, const void *data, size_t len)
{
	uint64_t size;
	void *buf;
	bool same;

	if (s3_head(s3, key, &size) != 0 || size != len)
		return false;
	buf = malloc(len ? len : 1);
	if (!buf)
		return false;
	same = s3_get_range(s3, key, 0, len, buf) == 0 && memcmp(buf, data, len) == 0;
	free(buf);
	if (!same)
		error_set(-EEXIST, "s3 PUT 's3://%s/%s%s': object exists already", s3->bucket,
			  s3->prefix, key);
	return same;
}

int s3_put(struct s3 *s3, const char *key, const void *data, size_t len, bool if_absent)
{
	struct s3_req r;
	int rc;

	rc = req_init(s3, &r, S3_PUT, key);
	if (!rc)
		rc = req_common_headers(s3, &r);
	if (!rc && if_absent)
		rc = req_header(&r, "If-None-Match: *");
	if (rc)
		goto out_release;
	r.up = data;
	r.up_len = len;
	r.body_max = S3_ERROR_BODY_MAX;
	rc = s3_perform(s3, &r);
	if (rc == -EEXIST && r.attempts > 1 && same_object(s3, key, data, len))
		rc = 0;
out_release:
	req_release(&r);
	return rc;
}

int s3_head(struct s3 *s3, const char *key, uint64_t *ret_size)
{
	struct s3_req r;
	int rc;

	rc = req_init(s3, &r, S3_HEAD, key);
	if (!rc)
		rc = req_common_headers(s3, &r);
	if (rc)
		goto out_release;
	r.body_max = S3_ERROR_BODY_MAX;
	rc = s3_perform(s3, &r);
	if (!rc && r.content_length < 0)
		rc = req_error(s3, &r, -EIO, "no content-length in the answer");
	if (!rc)
		*ret_size = (uint64_t)r.content_length;
out_release:
	req_release(&r);
	return rc;
}

int s3_delete(struct s3 *s3, const char *key)
{
	struct s3_req r;
	int rc;

	rc = req_init(s3, &r, S3_DELETE, key);
	if (!rc)
		rc = req_common_headers(s3, &r);
	if (rc)
		goto out_release;
	r.body_max = S3_ERROR_BODY_MAX;
	rc = s3_perform(s3, &r);
out_release:
	req_release(&r);
	return rc;
}

/* Percent-encoded "name=value&" appended to q (query strings must come
 * sorted by name: libcurl signs them as given). */
static int query_add(char **q, const char *name, const char *value)
{
	char *enc = uri_encode(value, false), *n;

	if (!enc)
		return -ENOMEM;
	n = str_printf("%s%s%s=%s", *q ? *q : "", *q ? "&" : "", name, enc);
	free(enc);
	if (!n)
		return -ENOMEM;
	free(*q);
	*q = n;
	return 0;
}

/* One ListObjectsV2 page after token (or the first); the parsed page. */
static int list_page(struct s3 *s3, const char *full_prefix, const char *token,
		     struct s3_list_page *pg)
{
	char *query = NULL, keys[16];
	struct s3_req r;
	int rc;

	snprintf(keys, sizeof(keys), "%u", s3->page_keys);
	memset(&r, 0, sizeof(r));
	r.method = S3_GET;
	r.key = full_prefix + strlen(s3->prefix);
	rc = token ? query_add(&query, "continuation-token", token) : 0;
	if (!rc)
		rc = query_add(&query, "list-type", "2");
	if (!rc)
		rc = query_add(&query, "max-keys", keys);
	if (!rc)
		rc = query_add(&query, "prefix", full_prefix);
	if (!rc && !(r.url = str_printf("%s/?%s", s3->base, query)))
		rc = -ENOMEM;
	free(query);
	if (!rc)
		rc = req_common_headers(s3, &r);
	if (rc)
		goto out_release;
	r.body_max = S3_LIST_BODY_MAX;
	rc = s3_perform(s3, &r);
	if (!rc)
		rc = s3_parse_xml(r.body ? r.body : "", r.body_len, pg);
	if (rc == -EIO && r.status / 100 == 2)
		rc = error_prefix(rc, "s3 list 's3://%s/%s'", s3->bucket, full_prefix);
out_release:
	req_release(&r);
	return rc;
}

int s3_list(struct s3 *s3, const char *prefix, s3_list_fn fn, void *arg)
{
	struct s3_list_page pg = { .fn = fn, .arg = arg, .strip = strlen(s3->prefix) };
	char *full, *token = NULL;
	int rc;

	full = str_printf("%s%s", s3->prefix, prefix);
	if (!full)
		return -ENOMEM;
	for (;;) {
		rc = list_page(s3, full, token, &pg);
		free(token);
		token = pg.next_token;
		pg.next_token = NULL;
		if (rc)
			break;
		if (pg.fn_rc) {
			rc = pg.fn_rc;
			break;
		}
		if (!pg.truncated)
			break;
		if (!token) {
			rc = error_set(-EIO, "s3 list 's3://%s/%s': truncated page without "
				       "a continuation token", s3->bucket, full);
			break;
		}
	}
	free(token);
	free(full);
	return rc;
}

int s3_create_bucket(struct s3 *s3)
{
	struct s3_req r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.method = S3_PUT;
	r.url = str_printf("%s/", s3->base);
	rc = r.url ? req_common_headers(s3, &r) : -ENOMEM;
	if (rc)
		goto out_release;
	r.up = "";
	r.up_len = 0;
	r.body_max = S3_ERROR_BODY_MAX;
	rc = s3_perform(s3, &r);
out_release:
	req_release(&r);
	return rc;
}
