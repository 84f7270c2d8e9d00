/* For the files of catalog/ only: the catalog's connection and lock, and the one statement
 * idiom that every table family's file (volumes.c, transfers.c, ...) runs through. Nothing
 * outside catalog/ includes this; catalog/catalog.h is the public header.
 *
 * The idiom. A reader:
 *
 *	sqlite3_stmt *stmt = NULL;
 *	int rc;
 *
 *	catalog_read_begin(catalog);
 *	rc = catalog_statement(catalog, &stmt, "SELECT ... WHERE name = ?1", "t", name);
 *	if (rc < 0)
 *		goto out;
 *	while ((rc = catalog_step(catalog, stmt, "site list")) == CATALOG_ROW) {
 *		...
 *	}
 * out:
 *	sqlite3_finalize(stmt);
 *	return catalog_read_end(catalog, rc);
 *
 * A writer of several statements takes catalog_write_begin(&owned) and ends with
 * catalog_write_end(owned, rc) instead; a writer of one statement is catalog_write(). Every
 * failure is recorded (ferry_error_set) where it is detected, with the catalog's path. */
#ifndef FERRY_CATALOG_INTERNAL_H
#define FERRY_CATALOG_INTERNAL_H

#include "catalog/catalog.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>

struct catalog {
	sqlite3 *db;
	char path[4096];
	pthread_mutex_t lock; /* recursive: held by every call, and from begin to commit */
};

/* The catalog's VFS (fault.c): the default one, except that a failed fsync of a catalog file
 * ends the process, and that the check build can fail the Nth write or fsync on demand.
 * catalog_vfs_register() makes it known to SQLite (once per process; again is a no-op). */
#define CATALOG_VFS_NAME "ferry"
int catalog_vfs_register(const char *path);
/* The exit status of a process that the catalog had to end: a failed fsync, or a transaction
 * that could not be rolled back (EX_IOERR of sysexits.h). A restart recovers from the WAL. */
#define CATALOG_EXIT_FATAL 74

/* catalog_step()'s answer when the statement produced a row (0: it is done). */
#define CATALOG_ROW 1

/* Records "catalog PATH: WHAT: SQLite's message" with the ferry code for sqlite_rc. */
int catalog_sqlite_error(struct catalog *catalog, int sqlite_rc, const char *what);
int catalog_prepare(struct catalog *catalog, const char *sql, sqlite3_stmt **stmt);
/* Runs SQL of several statements without parameters (pragmas, migrations, BEGIN/COMMIT). */
int catalog_exec(struct catalog *catalog, const char *sql);

/* Readers hold the lock from begin to end; catalog_read_end() unlocks and returns rc, or 0 for
 * CATALOG_ROW. */
void catalog_read_begin(struct catalog *catalog);
int catalog_read_end(struct catalog *catalog, int rc);
/* Takes the lock and starts a write transaction unless the caller already holds one; *owned
 * says which. catalog_write_end() commits (rc >= 0) or rolls back an owned one, unlocks and
 * returns rc (or the commit's error). Not a resource on failure: return at once. */
int catalog_write_begin(struct catalog *catalog, bool *owned);
int catalog_write_end(struct catalog *catalog, bool owned, int rc);

/* Prepares sql and binds its parameters ?1, ?2, ... from types, one letter each: 't' text
 * (NULL binds ''), 'z' text or NULL, 'i' int64_t (cast what is not), 'd' double. Texts are not
 * copied: they must outlive the statement. *stmt is set even on failure: finalize it at out. */
int catalog_statement(struct catalog *catalog, sqlite3_stmt **stmt, const char *sql,
		      const char *types, ...);
int catalog_statement_v(struct catalog *catalog, sqlite3_stmt **stmt, const char *sql,
			const char *types, va_list args);
/* Steps once: CATALOG_ROW, 0 when done, or the error (recorded, naming what). */
int catalog_step(struct catalog *catalog, sqlite3_stmt *stmt, const char *what);
/* One write statement in its own transaction (or the caller's); *changes (may be NULL) is how
 * many rows it changed. A constraint failure is FERRY_ERR_CONFLICT. */
int catalog_write(struct catalog *catalog, const char *what, int64_t *changes, const char *sql,
		  const char *types, ...);

/* The index of name in names, -1 when it is not there (or NULL). */
int catalog_name_index(const char *const *names, int count, const char *name);
/* Copies a text column into out, cut on a character boundary, as valid UTF-8. */
void catalog_copy_text(char *out, size_t size, sqlite3_stmt *stmt, int column);

#endif
