// SPDX-License-Identifier: MIT
/*
 * The snapfs command: dispatch to a command, the shared error reporting,
 * and the mount.fuse3 form `snapfs STORE MOUNTPOINT -o OPTS`.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
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
	"  init STORE                          create a store\n"
	"  save STORE NAME SOURCE [options]    capture SOURCE as snapshot NAME\n"
	"  list STORE [--json]                 list snapshots\n"
	"  info STORE [NAME] [--json]          describe a snapshot, or the store\n"
	"  restore STORE NAME OUTPUT [--force] write a memory file back (- for stdout)\n"
	"  rm STORE NAME...                    remove snapshots (space: see gc)\n"
	"  rename STORE OLD NEW                give a snapshot another name\n"
	"  prune STORE --keep-* ... [--dry-run] remove what no retention rule keeps\n"
	"  diff STORE NAME_A NAME_B [--json]   page ranges that differ\n"
	"  gc STORE                            drop unused blobs, give space back\n"
	"  verify STORE [NAME...]              re-read and check everything\n"
	"  workingset STORE NAME [--clear | --lay-out]\n"
	"                                      the pages a mount recorded (-o record)\n"
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

int cli_fail(int rc, const char *what)
{
	const char *detail = snapfs_errmsg();

	/* A busy store: name the command (the core's text may not). */
	if (detail[0] && rc == -EBUSY && cli_doing &&
	    strncmp(detail, cli_doing, strlen(cli_doing)) != 0)
		fprintf(stderr, "snapfs: %s: %s\n", cli_doing, detail);
	else if (detail[0])
		fprintf(stderr, "snapfs: %s\n", detail);
	else
		fprintf(stderr, "snapfs: %s: %s\n", what, snapfs_strerror(rc));
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
	{ "save", cmd_save },
	{ "list", cmd_list },
	{ "ls", cmd_list },
	{ "info", cmd_info },
	{ "restore", cmd_restore },
	{ "rm", cmd_rm },
	{ "rename", cmd_rename },
	{ "prune", cmd_prune },
	{ "diff", cmd_diff },
	{ "gc", cmd_gc },
	{ "verify", cmd_verify },
	{ "workingset", cmd_workingset },
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
