/* INI configuration files (inih): one reader for every program, errors naming file and line.
 * Programs map sections and keys to their own settings; command-line flags win over files. */
#ifndef FERRY_COMMON_CONFIG_H
#define FERRY_COMMON_CONFIG_H

/* Calls each() for every "key = value" of the file at path, in order. each() returns 0, or a
 * negative error (with its message set) to stop. Returns 0, or the first error: a file that
 * cannot be read, a line that is not INI, or what each() returned. */
int config_read_ini(const char *path,
		    int (*each)(const char *section, const char *key, const char *value,
				void *context),
		    void *context);

#endif
