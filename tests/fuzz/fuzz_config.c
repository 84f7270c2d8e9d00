/* libFuzzer target: INI configuration files (common/config.c over inih), and the CLI's reading
 * of ferry.conf on top of it (cmd/ferry_config.c, cli_config_load). The input is the file. Its
 * first byte also says after how many entries the handler stops with an error, so that the
 * early-stop path (the error carried out with the file's name) is fuzzed too. Every section,
 * key and value handed over must be a string no longer than the file. ferryd's own handler is
 * static in cmd/ferryd.c, next to its main(), and is not reached here. */
#include "cmd/cli.h"
#include "common/config.h"
#include "common/error.h"
#include "tests/fuzz/fuzz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct fuzz_config_walk {
	size_t size;
	unsigned entries, stop_after;
};

static int
fuzz_config_each(const char *section, const char *key, const char *value, void *context)
{
	struct fuzz_config_walk *walk = context;

	if (strlen(section) > walk->size || strlen(key) > walk->size ||
	    strlen(value) > walk->size) {
		fprintf(stderr, "fuzz_config: an entry is longer than the file\n");
		abort();
	}
	if (++walk->entries == walk->stop_after)
		return ferry_error_set(FERRY_ERR_INVALID, "stopped at entry %u ('%s' in [%s])",
				       walk->entries, key, section);
	return 0;
}

/* cmd/ferry_config.c's `ferry config` command needs these from cmd/ferry.c, whose main() is
 * not linked here; cli_config_load() never calls them. */
int
cli_usage_error(const struct cli_args *args)
{
	(void)args;
	abort();
}

int
cli_fail(const struct cli_options *options, const char *command)
{
	(void)options;
	(void)command;
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct fuzz_config_walk walk = {size, 0, size ? data[0] % 8 : 0};
	struct cli_options options = {0};

	if (fd < 0) {
		fd = memfd_create("ferry-fuzz.conf", 0);
		if (fd < 0) {
			perror("memfd_create");
			abort();
		}
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		unsetenv("FERRY_DAEMON");
		unsetenv("FERRY_TOKEN_FILE");
		unsetenv("FERRY_CACERT");
		unsetenv("CEPH_CONF");
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size) {
		perror("writing the configuration");
		abort();
	}
	(void)config_read_ini(path, fuzz_config_each, &walk);
	options.config_path = path;
	(void)cli_config_load(&options);
	ferry_error_clear();
	return 0;
}
