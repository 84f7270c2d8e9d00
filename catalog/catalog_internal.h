/* For the files of catalog/ only: the catalog's connection and lock, and the statement helpers
 * of catalog.c that every table family's file runs through. Nothing outside catalog/ includes
 * this; catalog/catalog.h is the public header. */
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

/* Records "catalog PATH: WHAT: SQLite's message" with the ferry code for sqlite_rc. */
int catalog_sqlite_error(struct catalog *catalog, int sqlite_rc, const char *what);
int catalog_prepare(struct catalog *catalog, const char *sql, sqlite3_stmt **stmt);
int catalog_exec(struct catalog *catalog, const char *sql);
/* Takes the lock and starts a write transaction unless the caller already holds one; *owned
 * says which. catalog_write_end() commits (rc 0) or rolls back an owned one and unlocks. */
int catalog_write_begin(struct catalog *catalog, bool *owned);
int catalog_write_end(struct catalog *catalog, bool owned, int rc);
int catalog_write_values(struct catalog *catalog, const char *sql, const char *what,
			 bool must_change, const char *types, ...);

#endif
