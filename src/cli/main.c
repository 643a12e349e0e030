// SPDX-License-Identifier: MIT
/*
 * The snapfs command: dispatch to a command, the shared error reporting,
 * and the mount.fuse3 form `snapfs STORE MOUNTPOINT -o OPTS`.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "snapfs_fuse.h"

volatile sig_atomic_t cli_cancel;

static const char usage_text[] =
	"usage: snapfs COMMAND [ARGS]\n"
	"\n"
	"Keep memory snapshots in a store and look inside them.\n"
	"\n"
	"commands:\n"
	"  init STORE [--remote s3://BUCKET/PREFIX] create a store (remote: in a bucket)\n"
	"  pull STORE                          pull a remote store's newest index\n"
	"  save STORE NAME SOURCE [options]    capture SOURCE as snapshot NAME\n"
	"  list STORE [--bytes] [--json]       list snapshots (sizes in KiB/MiB/GiB)\n"
	"  info STORE [NAME] [--bytes] [--json] describe a snapshot, or the store\n"
	"  restore STORE NAME OUTPUT [--force] write a memory file back (- for stdout)\n"
	"  export STORE NAME --format raw|elf|gvisor OUTPUT [--force]\n"
	"                                      the memory file, a process's ELF core, or gVisor files\n"
	"  rm STORE NAME...                    remove snapshots (space: see gc)\n"
	"  rename STORE OLD NEW                give a snapshot another name\n"
	"  prune STORE --keep-* ... [--dry-run] remove what no retention rule keeps\n"
	"  diff STORE NAME_A NAME_B [--json]   page ranges that differ\n"
	"  map STORE NAME [--against OTHER] [-o FILE]\n"
	"                                      an SVG picture of the address space\n"
	"  gc STORE                            drop unused blobs, give space back\n"
	"  verify STORE [NAME...]              re-read and check everything\n"
	"  workingset STORE NAME [--clear | --lay-out]\n"
	"                                      the pages a mount recorded (-o record)\n"
	"  uffd STORE NAME --socket PATH       serve a snapshot to a VMM over userfaultfd\n"
	"  mount STORE MOUNTPOINT [-f] [-o OPT,...]\n"
	"                                      show every snapshot as a file\n"
	"\n"
	"  snapfs STORE MOUNTPOINT -o OPTS     the form mount.fuse3 uses\n"
	"  snapfs --help | --version | COMMAND --help\n"
	"\n"
	"Every command takes --quiet; commands that write take --lock-wait SECONDS\n"
	"(how long to wait for another writer, default 5). Exit status: 0 success, 1 failure,\n"
	"2 bad usage, 3 damage found, 130 / 143 stopped by SIGINT / SIGTERM.\n"
	"See snapfs(1).\n";

static int print_version(void)
{
	printf("snapfs %s (schema version %d)\n", SNAPFS_VERSION, SNAPFS_SCHEMA_VERSION);
	return EXIT_OK;
}

static struct {
	char text[700];
	const char *cmd, *store;
	const char *const *names;
	size_t name_count;
} target;

/* The word between a snapshot and its store in a command's messages. */
static const char *target_preposition(const char *cmd)
{
	if (strcmp(cmd, "save") == 0)
		return "into";
	if (strcmp(cmd, "restore") == 0 || strcmp(cmd, "export") == 0 || strcmp(cmd, "rm") == 0)
		return "from";
	return "in";
}

void cli_target(const char *cmd, const char *store, const char *const *names,
		size_t name_count)
{
	char *t = target.text;
	size_t cap = sizeof(target.text);

	target.cmd = cmd;
	target.store = store;
	target.names = names;
	target.name_count = name_count;
	if (name_count == 0)
		snprintf(t, cap, "%s '%.300s'", cmd, store);
	else if (strcmp(cmd, "verify") == 0 && name_count == 1)
		snprintf(t, cap, "verify '%.300s' '%.200s'", store, names[0]);
	else if (strcmp(cmd, "verify") == 0)
		snprintf(t, cap, "verify '%.300s'", store);
	else if (strcmp(cmd, "diff") == 0 && name_count == 2)
		snprintf(t, cap, "diff '%.130s' '%.130s' in '%.300s'", names[0], names[1], store);
	else if (name_count == 1)
		snprintf(t, cap, "%s '%.200s' %s '%.300s'", cmd, names[0],
			 target_preposition(cmd), store);
	else
		snprintf(t, cap, "%s %zu snapshots %s '%.300s'", cmd, name_count,
			 target_preposition(cmd), store);
}

const char *cli_target_text(void)
{
	return target.text;
}

/* detail without prefix (and its ": "), or NULL. */
static const char *skip_prefix(const char *detail, const char *fmt, const char *a,
			       const char *b)
{
	char prefix[700];
	size_t len;

	snprintf(prefix, sizeof(prefix), fmt, a, b);
	len = strlen(prefix);
	return strncmp(detail, prefix, len) == 0 ? detail + len : NULL;
}

/* The library's detail without the parts the target names already:
 * "restore 'vm1': ", "snapshot 'vm1': ", "store '/srv/snaps': ". */
static const char *strip_known(const char *detail)
{
	const char *rest;
	bool again = true;

	while (again && detail[0]) {
		again = false;
		/* One name: the target names it. With more, the detail
		 * says which one. */
		for (size_t i = 0; i < target.name_count && !again; i++) {
			const char *n = target.names[i];

			if (target.name_count > 1) {
				if ((rest = skip_prefix(detail, "%s '%s': ", target.cmd, n)))
					detail = rest, again = true;
				continue;
			}

			if ((rest = skip_prefix(detail, "%s '%s': ", target.cmd, n)) ||
			    (rest = skip_prefix(detail, "snapshot '%s': %s", n, "")))
				detail = rest, again = true;
		}
		if (again)
			continue;
		if (target.name_count == 2 &&
		    (rest = skip_prefix(detail, "diff '%s' '%s': ", target.names[0],
					target.names[1])))
			detail = rest, again = true;
		else if ((rest = skip_prefix(detail, "%s: %s", target.cmd, "")) ||
			 (rest = skip_prefix(detail, "store '%s': %s", target.store, "")) ||
			 (rest = skip_prefix(detail, "'%s': %s", target.store, "")))
			detail = rest, again = true;
	}
	return detail;
}

int cli_fail(int rc, const char *what)
{
	const char *detail = snapfs_errmsg();

	if (!detail[0])
		detail = snapfs_strerror(rc);
	if (target.cmd) {
		detail = strip_known(detail);
		fprintf(stderr, "snapfs: %s: %s\n", target.text,
			detail[0] ? detail : snapfs_strerror(rc));
	} else if (strncmp(detail, what, strlen(what)) == 0) {
		fprintf(stderr, "snapfs: %s\n", detail);
	} else {
		fprintf(stderr, "snapfs: %s: %s\n", what, detail);
	}
	switch (-rc) {
	case SNAPFS_ECANCELED:
		/* 128 + the signal, as a shell reports a process it killed. */
		return 128 + (cli_cancel > 0 ? (int)cli_cancel : SIGINT);
	case SNAPFS_EBADNAME:
	case SNAPFS_ENOTSTORE:
	case SNAPFS_ENEWER:
	case SNAPFS_EUSAGE:
	case EINVAL:
		return EXIT_USAGE;
	default:
		return EXIT_FAILED;
	}
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("snapfs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_USAGE;
}

void cli_warning(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "snapfs: warning: %s: ", target.text);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_check_args(int argc, char **argv, int min, int max, const char *names,
		   const char *usage)
{
	int n = argc - optind;
	const char *missing = names;

	if (n > max && max >= 0)
		return cli_usage_error("%s: unexpected argument '%s' (usage: snapfs %s)", argv[0],
				       argv[optind + max], usage);
	if (n >= min)
		return -1;
	/* Skip the names given: "STORE NAME OUTPUT" with 2 -> "OUTPUT". */
	for (int i = 0; i < n && missing; i++) {
		missing = strchr(missing, ' ');
		if (missing)
			missing++;
	}
	return cli_usage_error("%s: missing %s (usage: snapfs %s)", argv[0],
			       missing ? missing : names, usage);
}

int cli_open_store(const char *dir, unsigned flags, struct snapfs_store **ret_store)
{
	int rc = snapfs_store_open(dir, flags, ret_store);

	return rc < 0 ? cli_fail(rc, dir) : 0;
}

static void on_signal(int sig)
{
	if (!cli_cancel)
		cli_cancel = sig;
}

void cli_catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	/* Every statement on every connection stops too (a long query). */
	snapfs_set_cancel_flag(&cli_cancel);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "init", cmd_init },
	{ "pull", cmd_pull },
	{ "save", cmd_save },
	{ "list", cmd_list },
	{ "ls", cmd_list },
	{ "info", cmd_info },
	{ "restore", cmd_restore },
	{ "export", cmd_export },
	{ "rm", cmd_rm },
	{ "rename", cmd_rename },
	{ "prune", cmd_prune },
	{ "diff", cmd_diff },
	{ "map", cmd_map },
	{ "gc", cmd_gc },
	{ "verify", cmd_verify },
	{ "workingset", cmd_workingset },
	{ "uffd", cmd_uffd },
	{ "mount", snapfs_mount_main },
};

int main(int argc, char **argv)
{
	struct stat st;

	if (argc < 2)
		return fputs(usage_text, stderr), EXIT_USAGE;
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return fputs(usage_text, stdout), EXIT_OK;
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
		return print_version();
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		/* The mount has libfuse's handlers; every other command stops
		 * cleanly, with 130 / 143, whatever it is doing. */
		if (commands[i].run != snapfs_mount_main)
			cli_catch_signals();
		return commands[i].run(argc - 1, argv + 1);
	}
	/* mount.fuse3 runs "snapfs STORE MOUNTPOINT -o OPTS". */
	if (argc >= 3 && argv[1][0] != '-' && stat(argv[1], &st) == 0 && S_ISDIR(st.st_mode))
		return snapfs_mount_main(argc, argv);
	if (argv[1][0] == '-')
		return cli_usage_error("unknown option '%s' (try 'snapfs --help')", argv[1]);
	return cli_usage_error("unknown command '%s' (try 'snapfs --help')", argv[1]);
}
