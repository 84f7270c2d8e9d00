/* stderr logger: one line per message, written with a single write so threads do not interleave;
 * control bytes (a newline or escape sequence quoted from a request) are shown as '?'. When
 * stderr is systemd's journal, a line starts with its syslog priority instead of a timestamp. */
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_threshold = LOG_LEVEL_INFO;

void
log_set_level(enum log_level level)
{
	log_threshold = level;
}

static bool log_to_journal;
static pthread_once_t log_journal_once = PTHREAD_ONCE_INIT;

/* systemd sets JOURNAL_STREAM=DEVICE:INODE of the stream it connects; stderr redirected
 * elsewhere (a test's file) keeps plain lines even though the variable was inherited. */
static void
log_journal_detect(void)
{
	const char *stream = getenv("JOURNAL_STREAM");
	unsigned long long device, inode;
	struct stat info;

	log_to_journal = stream && sscanf(stream, "%llu:%llu", &device, &inode) == 2 &&
			 fstat(STDERR_FILENO, &info) == 0 &&
			 (unsigned long long)info.st_dev == device &&
			 (unsigned long long)info.st_ino == inode;
}

bool
log_journal(void)
{
	pthread_once(&log_journal_once, log_journal_detect);
	return log_to_journal;
}

void
log_message(enum log_level level, const char *format, ...)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	/* syslog's debug, info, warning and err */
	static const char priorities[] = {'7', '6', '4', '3'};
	char line[2048];
	struct timespec now;
	struct tm tm;
	va_list args;
	int used;

	if (level < log_threshold)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	if (log_journal())
		used = snprintf(line, sizeof(line), "<%c>%s: ", priorities[level], names[level]);
	else
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
