/* Per-thread error messages: set once where a failure is detected, read where it is reported. */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char error_message[1024];
static _Thread_local int error_code;

int
ferry_error_set(int code, const char *format, ...)
{
	va_list args;

	char formatted[sizeof(error_message)];

	/* Format aside first: callers may wrap the previous message ("%s", ferry_error_message()),
	 * and vsnprintf must not read the buffer it writes. */
	va_start(args, format);
	vsnprintf(formatted, sizeof(formatted), format, args);
	va_end(args);
	memcpy(error_message, formatted, sizeof(error_message));
	error_code = code;
	return code;
}

const char *
ferry_error_message(void)
{
	return error_message;
}

int
ferry_error_last_code(void)
{
	return error_code;
}

void
ferry_error_clear(void)
{
	error_message[0] = '\0';
	error_code = 0;
}

static const struct {
	int code;
	const char *name;
} error_names[] = {
	{FERRY_OK, "ok"},
	{FERRY_ERR_INTERNAL, "internal"},
	{FERRY_ERR_INVALID, "invalid_request"},
	{FERRY_ERR_UNAUTHORIZED, "unauthorized"},
	{FERRY_ERR_NOT_FOUND, "not_found"},
	{FERRY_ERR_CONFLICT, "conflict"},
	{FERRY_ERR_CHECKSUM, "checksum_mismatch"},
	{FERRY_ERR_NO_SPACE, "no_space"},
	{FERRY_ERR_IO, "io_error"},
	{FERRY_ERR_TOO_LARGE, "too_large"},
	{FERRY_ERR_NETWORK, "network"},
	{FERRY_ERR_TLS, "tls"},
	{FERRY_ERR_NO_MEMORY, "no_memory"},
	{FERRY_ERR_REMOTE, "remote"},
	{FERRY_ERR_METHOD, "method_not_allowed"},
	{FERRY_ERR_FORBIDDEN, "forbidden"},
	{FERRY_ERR_SPLIT_BRAIN, "split_brain"},
};

const char *
ferry_error_name(int code)
{
	for (size_t i = 0; i < sizeof(error_names) / sizeof(error_names[0]); i++)
		if (error_names[i].code == code)
			return error_names[i].name;
	return "internal";
}

int
ferry_error_from_name(const char *name)
{
	for (size_t i = 0; name && i < sizeof(error_names) / sizeof(error_names[0]); i++)
		if (strcmp(error_names[i].name, name) == 0)
			return error_names[i].code;
	return FERRY_ERR_REMOTE;
}
