/* Implementation of the shared helpers; see util.h. */
#include "common/util.h"
#include "common/error.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int
util_read_file(const char *path, size_t max, char **data_out, size_t *length_out)
{
	char *data = NULL;
	size_t used = 0;
	int fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = ferry_error_set(errno == ENOENT ? FERRY_ERR_NOT_FOUND : FERRY_ERR_IO,
				     "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	data = malloc(max + 1);
	if (data == NULL) {
		rc = ferry_error_no_memory();
		goto out;
	}
	for (;;) {
		ssize_t got = read(fd, data + used, max + 1 - used);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = ferry_error_set(FERRY_ERR_IO, "cannot read %s: %s", path,
					     strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		used += (size_t)got;
		if (used > max) {
			rc = ferry_error_set(FERRY_ERR_TOO_LARGE, "%s is larger than %zu bytes",
					     path, max);
			goto out;
		}
	}
	data[used] = '\0';
	*data_out = data;
	data = NULL;
	if (length_out)
		*length_out = used;
	rc = 0;
out:
	free(data);
	if (fd >= 0)
		close(fd);
	return rc;
}

int
util_read_token_file(const char *path, char **token_out)
{
	char *data = NULL, *start, *end;
	int rc;

	if (path == NULL)
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"no token file given: pass --token-file FILE (a file holding "
			"the daemon's bearer token)");
	rc = util_read_file(path, TOKEN_MAX, &data, NULL);
	if (rc < 0) {
		char cause[512];

		/* The cause lives in the same per-thread buffer that the new message goes to. */
		snprintf(cause, sizeof(cause), "%s", ferry_error_message());
		ferry_error_set(rc,
				"token file: %s; check the path and that it is readable by this "
				"user",
				cause);
		return rc;
	}
	start = data;
	while (*start && isspace((unsigned char)*start))
		start++;
	end = start + strlen(start);
	while (end > start && isspace((unsigned char)end[-1]))
		*--end = '\0';
	if (*start == '\0') {
		free(data);
		return ferry_error_set(FERRY_ERR_INVALID,
				       "token file %s is empty; write a token "
				       "(e.g. `openssl rand -hex 32 > %s`)",
				       path, path);
	}
	memmove(data, start, strlen(start) + 1);
	*token_out = data;
	return 0;
}

bool
util_volume_name_valid(const char *name)
{
	size_t length;

	if (name == NULL || name[0] == '\0' || name[0] == '.')
		return false;
	length = strlen(name);
	if (length > VOLUME_NAME_MAX)
		return false;
	for (size_t i = 0; i < length; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!(isalnum(c) || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool
util_secret_equal(const char *a, const char *b)
{
	size_t length_a = strlen(a), length_b = strlen(b);
	unsigned char difference = length_a != length_b;

	/* Walk the expected secret's full length whatever the input, so timing reveals nothing
	 * but the input's own length. */
	for (size_t i = 0; i < length_a; i++)
		difference |= (unsigned char)a[i] ^ (unsigned char)(i < length_b ? b[i] : 0);
	return difference == 0;
}

int64_t
util_now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

double
util_monotonic_seconds(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

int
util_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return ferry_error_set(FERRY_ERR_IO, "cannot open folder %s: %s", path,
				       strerror(errno));
	if (fsync(fd) < 0)
		rc = ferry_error_set(FERRY_ERR_IO, "fsync of folder %s: %s", path, strerror(errno));
	close(fd);
	return rc;
}

int
util_mkdir_p(const char *path, int mode)
{
	char buffer[4096];
	size_t length = strlen(path);

	if (length == 0 || length >= sizeof(buffer))
		return ferry_error_set(FERRY_ERR_INVALID, "bad folder path '%s'", path);
	memcpy(buffer, path, length + 1);
	for (char *p = buffer + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buffer, (mode_t)mode) < 0 && errno != EEXIST)
			return ferry_error_set(FERRY_ERR_IO, "cannot create folder %s: %s", buffer,
					       strerror(errno));
		*p = '/';
	}
	if (mkdir(buffer, (mode_t)mode) < 0 && errno != EEXIST)
		return ferry_error_set(FERRY_ERR_IO, "cannot create folder %s: %s", buffer,
				       strerror(errno));
	return 0;
}

int
util_write_file_atomic(const char *path, const void *data, size_t length, int mode)
{
	char temporary[4096], folder[4096];
	char *slash;
	int fd = -1, rc = -1;

	snprintf(temporary, sizeof(temporary), "%s.tmp", path);
	snprintf(folder, sizeof(folder), "%s", path);
	slash = strrchr(folder, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(folder, sizeof(folder), ".");
	fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
	if (fd < 0 || write(fd, data, length) != (ssize_t)length || fsync(fd) < 0) {
		rc = ferry_error_set(errno == ENOSPC ? FERRY_ERR_NO_SPACE : FERRY_ERR_IO,
				     "cannot write %s: %s", temporary, strerror(errno));
		goto out;
	}
	if (rename(temporary, path) < 0) {
		rc = ferry_error_set(FERRY_ERR_IO, "cannot rename %s to %s: %s", temporary, path,
				     strerror(errno));
		goto out;
	}
	rc = util_fsync_dir(folder);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

void
util_format_bytes(double bytes, char *buf, size_t size)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	int unit = 0;

	while (bytes >= 1024 && unit < 5) {
		bytes /= 1024;
		unit++;
	}
	snprintf(buf, size, unit ? "%.1f %s" : "%.0f %s", bytes, units[unit]);
}

int
util_parse_size(const char *text, uint64_t *out)
{
	char *end = NULL;
	unsigned long long value;
	uint64_t multiplier = 1;

	if (text == NULL || !isdigit((unsigned char)text[0]))
		return FERRY_ERR_INVALID;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno)
		return FERRY_ERR_INVALID;
	switch (tolower((unsigned char)*end)) {
	case '\0': break;
	case 'k':
		multiplier = 1ull << 10;
		end++;
		break;
	case 'm':
		multiplier = 1ull << 20;
		end++;
		break;
	case 'g':
		multiplier = 1ull << 30;
		end++;
		break;
	default: return FERRY_ERR_INVALID;
	}
	if (*end && strcmp(end, "iB") != 0 && strcmp(end, "B") != 0)
		return FERRY_ERR_INVALID;
	if (value > UINT64_MAX / multiplier)
		return FERRY_ERR_INVALID;
	*out = value * multiplier;
	return 0;
}

int
util_format(char *out, size_t size, const char *what, const char *format, ...)
{
	va_list arguments;
	int written;

	va_start(arguments, format);
	written = vsnprintf(out, size, format, arguments);
	va_end(arguments);
	if (written < 0)
		return ferry_error_set(FERRY_ERR_INTERNAL, "cannot format %s", what);
	if ((size_t)written >= size) {
		out[0] = '\0';
		return ferry_error_set(FERRY_ERR_TOO_LARGE,
				       "%s would be %d bytes, more than the %zu there is room for; "
				       "choose a shorter name or folder",
				       what, written, size - 1);
	}
	return 0;
}

int
util_parse_int64(const char *text, int64_t minimum, int64_t maximum, int64_t *out)
{
	const char *digits = text;
	char *end = NULL;
	long long value;

	if (text == NULL)
		return FERRY_ERR_INVALID;
	if (*digits == '-' && minimum < 0)
		digits++;
	if (*digits < '0' || *digits > '9' || (digits[0] == '0' && digits[1] != '\0'))
		return FERRY_ERR_INVALID;
	errno = 0;
	value = strtoll(text, &end, 10);
	if (errno || *end || value < minimum || value > maximum)
		return FERRY_ERR_INVALID;
	*out = value;
	return 0;
}

void
util_utf8_sanitize(char *text)
{
	unsigned char *c = (unsigned char *)text;

	while (*c) {
		size_t length = *c < 0x80	      ? 1
				: (*c & 0xe0) == 0xc0 ? 2
				: (*c & 0xf0) == 0xe0 ? 3
				: (*c & 0xf8) == 0xf0 ? 4
						      : 0;
		bool valid = length > 0 && !(*c >= 0x80 && *c < 0xc2) && *c < 0xf5;

		for (size_t i = 1; valid && i < length; i++)
			valid = (c[i] & 0xc0) == 0x80;
		/* no surrogates (ED A0..BF) and no overlong three- or four-byte forms */
		if (valid && length == 3)
			valid = !(c[0] == 0xe0 && c[1] < 0xa0) && !(c[0] == 0xed && c[1] >= 0xa0);
		if (valid && length == 4)
			valid = !(c[0] == 0xf0 && c[1] < 0x90) && !(c[0] == 0xf4 && c[1] >= 0x90);
		if (!valid) {
			*c++ = '?';
			continue;
		}
		c += length;
	}
}
