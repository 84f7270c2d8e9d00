/* The event log: every operator-visible change, newest 100,000 kept, read newest first or
 * (the event stream) after a given id. Statements follow the idiom of catalog_internal.h. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <stdio.h>
#include <string.h>

/* ---- events ---- */

static int
catalog_event_vadd(struct catalog *catalog, const char *kind, const char *level, const char *object,
		   const char *format, va_list args)
{
	char message[1024];
	bool owned = false;
	int64_t id = 0;
	int rc;

	vsnprintf(message, sizeof(message), format, args);
	/* A message quotes what callers sent: stored as valid text, or no listing could show it. */
	util_utf8_sanitize(message);
	rc = catalog_write_begin(catalog, &owned);
	if (rc < 0)
		return rc;
	rc = catalog_write(catalog, "event add", NULL,
			   "INSERT INTO events (time_ms, level, object, message, kind)"
			   " VALUES (?1, ?2, ?3, ?4, ?5)",
			   "itttt", util_now_ms(), level, object, message, kind);
	if (rc == 0)
		id = sqlite3_last_insert_rowid(catalog->db);
	/* The newest 100,000 are kept: a point a second for a year would be tens of millions of
	 * rows. */
	if (rc == 0 && id % 1000 == 0)
		rc = catalog_write(catalog, "event trim", NULL,
				   "DELETE FROM events WHERE id <= ?1 - 100000", "i", id);
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
	int rc;

	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt,
			       after_id < 0
				       ? "SELECT id, time_ms, level, object, message, kind FROM"
					 " events ORDER BY id DESC LIMIT ?1"
				       : "SELECT id, time_ms, level, object, message, kind FROM"
					 " events WHERE id > ?2 ORDER BY id LIMIT ?1",
			       after_id < 0 ? "i" : "ii", (int64_t)limit, after_id);
	if (rc < 0)
		goto out;
	while ((rc = catalog_step(catalog, stmt, "event list")) == CATALOG_ROW) {
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
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
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
