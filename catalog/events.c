/* The event log: every operator-visible change, newest 100,000 kept, read newest first or
 * (the event stream) after a given id. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- events ---- */

static int
catalog_event_vadd(struct catalog *catalog, const char *kind, const char *level, const char *object,
		   const char *format, va_list args)
{
	sqlite3_stmt *stmt = NULL;
	char message[1024];
	bool owned;
	int rc;

	vsnprintf(message, sizeof(message), format, args);
	/* A message quotes what callers sent: stored as valid text, or no listing could show it. */
	util_utf8_sanitize(message);
	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	rc = catalog_prepare(catalog,
			     "INSERT INTO events (time_ms, level, object, message, kind)"
			     " VALUES (?1, ?2, ?3, ?4, ?5)",
			     &stmt);
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(stmt, 1, util_now_ms());
	sqlite3_bind_text(stmt, 2, level, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, object, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, message, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, kind, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		rc = catalog_sqlite_error(catalog, sqlite3_errcode(catalog->db), "event add");
	else if (sqlite3_last_insert_rowid(catalog->db) % 1000 == 0)
		/* The newest 100,000 are kept: a point a second for a year would be tens of
		 * millions of rows. */
		sqlite3_exec(catalog->db,
			     "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - 100000",
			     NULL, NULL, NULL);
out:
	sqlite3_finalize(stmt);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_event_add(struct catalog *catalog, const char *level, const char *object,
		  const char *format, ...)
{
	va_list args;
	int rc;

	va_start(args, format);
	rc = catalog_event_vadd(catalog, strcmp(level, "error") == 0 ? "error" : "info", level,
				object, format, args);
	va_end(args);
	return rc;
}

int
catalog_event_add_kind(struct catalog *catalog, const char *kind, const char *level,
		       const char *object, const char *format, ...)
{
	va_list args;
	int rc;

	va_start(args, format);
	rc = catalog_event_vadd(catalog, kind, level, object, format, args);
	va_end(args);
	return rc;
}

static int
catalog_event_select(struct catalog *catalog, int64_t after_id, int limit,
		     int (*each)(const struct catalog_event *event, void *context), void *context)
{
	sqlite3_stmt *stmt = NULL;
	struct catalog_event event;
	int rc, step;

	pthread_mutex_lock(&catalog->lock);
	rc = catalog_prepare(catalog,
			     after_id < 0 ? "SELECT id, time_ms, level, object, message, kind FROM"
					    " events ORDER BY id DESC LIMIT ?1"
					  : "SELECT id, time_ms, level, object, message, kind FROM"
					    " events WHERE id > ?2 ORDER BY id LIMIT ?1",
			     &stmt);
	if (rc < 0)
		goto out;
	sqlite3_bind_int(stmt, 1, limit);
	if (after_id >= 0)
		sqlite3_bind_int64(stmt, 2, after_id);
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		memset(&event, 0, sizeof(event));
		event.id = sqlite3_column_int64(stmt, 0);
		event.time_ms = sqlite3_column_int64(stmt, 1);
		catalog_copy_text(event.level, sizeof(event.level), stmt, 2);
		catalog_copy_text(event.object, sizeof(event.object), stmt, 3);
		catalog_copy_text(event.message, sizeof(event.message), stmt, 4);
		catalog_copy_text(event.kind, sizeof(event.kind), stmt, 5);
		rc = each(&event, context);
		if (rc < 0)
			goto out;
	}
	if (step != SQLITE_DONE)
		rc = catalog_sqlite_error(catalog, step, "event list");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&catalog->lock);
	return rc;
}

int
catalog_event_list(struct catalog *catalog, int limit,
		   int (*each)(const struct catalog_event *event, void *context), void *context)
{
	return catalog_event_select(catalog, -1, limit, each, context);
}

int
catalog_event_list_after(struct catalog *catalog, int64_t after_id, int limit,
			 int (*each)(const struct catalog_event *event, void *context),
			 void *context)
{
	return catalog_event_select(catalog, after_id < 0 ? 0 : after_id, limit, each, context);
}
