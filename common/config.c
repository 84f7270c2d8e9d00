/* inih wrapper: turns inih's line numbers and handler results into one ferry error. */
#include "common/config.h"
#include "common/error.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <string.h>

struct config_reader {
	int (*each)(const char *section, const char *key, const char *value, void *context);
	void *context;
	int rc;
};

static int
config_handler(void *user, const char *section, const char *key, const char *value)
{
	struct config_reader *reader = user;

	if (reader->rc < 0)
		return 0;
	reader->rc = reader->each(section, key, value, reader->context);
	return reader->rc < 0 ? 0 : 1;
}

int
config_read_ini(const char *path,
		int (*each)(const char *section, const char *key, const char *value, void *context),
		void *context)
{
	struct config_reader reader = {each, context, 0};
	char cause[512];
	int line = ini_parse(path, config_handler, &reader);

	if (line == -1)
		return ferry_error_set(FERRY_ERR_NOT_FOUND, "cannot read configuration %s: %s",
				       path, strerror(errno));
	if (line == -2)
		return ferry_error_set(FERRY_ERR_NO_MEMORY, "out of memory reading %s", path);
	if (reader.rc < 0) {
		snprintf(cause, sizeof(cause), "%s", ferry_error_message());
		return ferry_error_set(reader.rc, "configuration %s: %s", path, cause);
	}
	if (line > 0)
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"configuration %s, line %d: not 'key = value' or '[section]'", path, line);
	return 0;
}
