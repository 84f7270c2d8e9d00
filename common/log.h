/* Logging to stderr with a UTC timestamp and a level; ferryd runs in the foreground and
 * leaves storage of its log to whoever runs it (systemd's journal, a test's file). */
#ifndef FERRY_COMMON_LOG_H
#define FERRY_COMMON_LOG_H

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

#include <stdbool.h>

void log_set_level(enum log_level level);
/* Whether stderr is systemd's journal (JOURNAL_STREAM names it). */
bool log_journal(void);
void log_message(enum log_level level, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

#define log_debug(...) log_message(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_message(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_message(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_message(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
