/* Small helpers shared by both programs: secrets in files, names that are safe as file names,
 * clocks, constant-time comparison and crash-safe file replacement. */
#ifndef FERRY_COMMON_UTIL_H
#define FERRY_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VOLUME_NAME_MAX 128
#define TOKEN_MAX	4096

/* Reads a token file, trims surrounding white space. Caller frees *token_out.
 * Errors name the file and say what to do. */
int util_read_token_file(const char *path, char **token_out);

/* A volume name is 1..VOLUME_NAME_MAX of [A-Za-z0-9._-], not starting with '.':
 * it can never name a parent folder or escape the volumes folder. */
bool util_volume_name_valid(const char *name);

/* Compares two strings in time that depends only on their lengths. */
bool util_secret_equal(const char *a, const char *b);

int64_t util_now_ms(void);
double util_monotonic_seconds(void);

/* Writes data to path through a temporary file, fsync, rename and fsync of the folder. */
int util_write_file_atomic(const char *path, const void *data, size_t length, int mode);
/* Reads a whole small file (up to max bytes). Caller frees *data_out (NUL-terminated). */
int util_read_file(const char *path, size_t max, char **data_out, size_t *length_out);
int util_mkdir_p(const char *path, int mode);
int util_fsync_dir(const char *path);

/* "1.5 GiB"-style text into buf. */
void util_format_bytes(double bytes, char *buf, size_t size);
/* Parses "4194304", "4M", "4MiB", "64k": returns 0 or FERRY_ERR_INVALID. */
int util_parse_size(const char *text, uint64_t *out);
/* snprintf that never cuts: FERRY_ERR_TOO_LARGE, naming what (say "the path of the catalog")
 * and the room there is, when the result does not fit in size bytes. */
int util_format(char *out, size_t size, const char *what, const char *format, ...)
	__attribute__((format(printf, 4, 5)));

/* The one strict parser of decimal integers from outside: digits only (a leading '-' where
 * minimum < 0), no leading zeros, no spaces or trailing bytes, within [minimum, maximum];
 * FERRY_ERR_INVALID otherwise (not reported: the caller names the field). */
int util_parse_int64(const char *text, int64_t minimum, int64_t maximum, int64_t *out);
/* Replaces, in place, every byte of text that is not part of a well-formed UTF-8 sequence with
 * '?': what is stored or listed is always valid text. */
void util_utf8_sanitize(char *text);

#endif
