/* stderr logger: one line per message, written with a single write so threads do not interleave;
 * control bytes (a newline or escape sequence quoted from a request) are shown as '?'. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_threshold = LOG_LEVEL_INFO;

void
log_set_level(enum log_level level)
{
	log_threshold = level;
}

void
log_message(enum log_level level, const char *format, ...)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	char line[2048];
	struct timespec now;
	struct tm tm;
	va_list args;
	int used;

	if (level < log_threshold)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	used = snprintf(line, sizeof(line),
			"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: ", tm.tm_year + 1900,
			tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			now.tv_nsec / 1000000, names[level]);
	va_start(args, format);
	used += vsnprintf(line + used, sizeof(line) - (size_t)used - 1, format, args);
	va_end(args);
	if (used > (int)sizeof(line) - 2)
		used = (int)sizeof(line) - 2;
	/* A message may quote what a client sent: no byte of it may start a line of its own or
	 * drive a terminal. */
	for (int i = 0; i < used; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[used++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)used) < 0)
		return;
}
