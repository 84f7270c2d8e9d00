/* Who may do what at a site: API tokens with their roles (stored as hashes, never secrets), the
 * peer token that owns each received volume and VM record, and the audit log of every
 * mutating request. The statements run through catalog.c's helpers and lock. */
#include "catalog/catalog.h"
#include "common/error.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

static void
catalog_token_bind(sqlite3_stmt *stmt, const void *row)
{
	const struct catalog_token *token = row;

	sqlite3_bind_text(stmt, 1, token->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, token->role, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, token->hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, token->created_ms);
	sqlite3_bind_int64(stmt, 5, token->last_used_ms);
	sqlite3_bind_int64(stmt, 6, token->expires_ms);
}

int
catalog_token_add(struct catalog *catalog, const struct catalog_token *token)
{
	int rc = catalog_write_one(catalog,
				   "INSERT INTO tokens (name, role, hash, created_ms, last_used_ms,"
				   " expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
				   "token add", catalog_token_bind, token, false);

	if (rc == FERRY_ERR_CONFLICT)
		rc = ferry_error_set(
			FERRY_ERR_CONFLICT,
			"a token named %s exists already; revoke it first (ferry token "
			"revoke %s) or choose another name",
			token->name, token->name);
	return rc;
}

struct catalog_token_reader {
	int (*each)(const struct catalog_token *token, void *context);
	void *context;
};

static int
catalog_token_row(sqlite3_stmt *stmt, void *context)
{
	struct catalog_token_reader *reader = context;
	struct catalog_token token;

	catalog_copy_text(token.name, sizeof(token.name), stmt, 0);
	catalog_copy_text(token.role, sizeof(token.role), stmt, 1);
	catalog_copy_text(token.hash, sizeof(token.hash), stmt, 2);
	token.created_ms = sqlite3_column_int64(stmt, 3);
	token.last_used_ms = sqlite3_column_int64(stmt, 4);
	token.expires_ms = sqlite3_column_int64(stmt, 5);
	return reader->each(&token, reader->context);
}

static int
catalog_token_copy(const struct catalog_token *token, void *context)
{
	*(struct catalog_token *)context = *token;
	return 0;
}

int
catalog_token_find(struct catalog *catalog, const char *hash, struct catalog_token *out)
{
	struct catalog_token_reader reader = {catalog_token_copy, out};
	int rows, rc;

	rc = catalog_read_rows(catalog,
			       "SELECT name, role, hash, created_ms, last_used_ms, expires_ms"
			       " FROM tokens WHERE hash = ?1",
			       hash, "token find", catalog_token_row, &reader, &rows);
	if (rc == 0 && rows == 0)
		rc = FERRY_ERR_NOT_FOUND; /* not reported: the caller answers 401 */
	return rc;
}

int
catalog_token_list(struct catalog *catalog,
		   int (*each)(const struct catalog_token *token, void *context), void *context)
{
	struct catalog_token_reader reader = {each, context};
	int rows;

	return catalog_read_rows(catalog,
				 "SELECT name, role, hash, created_ms, last_used_ms, expires_ms"
				 " FROM tokens ORDER BY name",
				 NULL, "token list", catalog_token_row, &reader, &rows);
}

static void
catalog_name_bind(sqlite3_stmt *stmt, const void *row)
{
	sqlite3_bind_text(stmt, 1, row, -1, SQLITE_STATIC);
}

int
catalog_token_revoke(struct catalog *catalog, const char *name)
{
	int rc = catalog_write_one(catalog, "DELETE FROM tokens WHERE name = ?1", "token revoke",
				   catalog_name_bind, name, true);

	if (rc == FERRY_ERR_NOT_FOUND)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "no token named '%s' (ferry token list shows them)", name);
	return rc;
}

struct catalog_touch {
	const char *name;
	int64_t now_ms;
};

static void
catalog_touch_bind(sqlite3_stmt *stmt, const void *row)
{
	const struct catalog_touch *touch = row;

	sqlite3_bind_text(stmt, 1, touch->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, touch->now_ms);
}

int
catalog_token_touch(struct catalog *catalog, const char *name, int64_t now_ms)
{
	struct catalog_touch touch = {name, now_ms};

	return catalog_write_one(catalog, "UPDATE tokens SET last_used_ms = ?2 WHERE name = ?1",
				 "token touch", catalog_touch_bind, &touch, false);
}

/* ---- owners ---- */

struct catalog_owner {
	const char *kind, *name, *token;
};

static void
catalog_owner_bind(sqlite3_stmt *stmt, const void *row)
{
	const struct catalog_owner *owner = row;

	sqlite3_bind_text(stmt, 1, owner->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, owner->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, owner->token, -1, SQLITE_STATIC);
}

int
catalog_owner_set(struct catalog *catalog, const char *kind, const char *name, const char *token)
{
	struct catalog_owner owner = {kind, name, token};

	return catalog_write_one(catalog,
				 "INSERT INTO owners (kind, name, token) VALUES (?1, ?2, ?3)"
				 " ON CONFLICT (kind, name) DO UPDATE SET token = ?3",
				 "owner set", catalog_owner_bind, &owner, false);
}

struct catalog_owner_reader {
	char *token;
	size_t size;
};

static int
catalog_owner_row(sqlite3_stmt *stmt, void *context)
{
	struct catalog_owner_reader *reader = context;

	catalog_copy_text(reader->token, reader->size, stmt, 0);
	return 0;
}

int
catalog_owner_get(struct catalog *catalog, const char *kind, const char *name, char *token,
		  size_t size)
{
	struct catalog_owner_reader reader = {token, size};
	char key[400];
	int rows;

	/* One text parameter: kind and name joined by a byte that no name may hold. */
	snprintf(key, sizeof(key), "%s/%s", kind, name);
	token[0] = '\0';
	return catalog_read_rows(catalog, "SELECT token FROM owners WHERE kind || '/' || name = ?1",
				 key, "owner get", catalog_owner_row, &reader, &rows);
}

/* ---- audit ---- */

static void
catalog_audit_bind(sqlite3_stmt *stmt, const void *row)
{
	const struct catalog_audit_entry *entry = row;

	sqlite3_bind_int64(stmt, 1, entry->time_ms);
	sqlite3_bind_text(stmt, 2, entry->token, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, entry->role, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, entry->client, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, entry->method, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 6, entry->path, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 7, entry->object, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 8, entry->status);
}

int
catalog_audit_add(struct catalog *catalog, const struct catalog_audit_entry *entry)
{
	return catalog_write_one(catalog,
				 "INSERT INTO audit (time_ms, token, role, client, method, path,"
				 " object, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
				 "audit add", catalog_audit_bind, entry, false);
}

struct catalog_audit_reader {
	int (*each)(const struct catalog_audit_entry *entry, void *context);
	void *context;
};

static int
catalog_audit_row(sqlite3_stmt *stmt, void *context)
{
	struct catalog_audit_reader *reader = context;
	struct catalog_audit_entry entry;

	entry.id = sqlite3_column_int64(stmt, 0);
	entry.time_ms = sqlite3_column_int64(stmt, 1);
	catalog_copy_text(entry.token, sizeof(entry.token), stmt, 2);
	catalog_copy_text(entry.role, sizeof(entry.role), stmt, 3);
	catalog_copy_text(entry.client, sizeof(entry.client), stmt, 4);
	catalog_copy_text(entry.method, sizeof(entry.method), stmt, 5);
	catalog_copy_text(entry.path, sizeof(entry.path), stmt, 6);
	catalog_copy_text(entry.object, sizeof(entry.object), stmt, 7);
	entry.status = sqlite3_column_int(stmt, 8);
	return reader->each(&entry, reader->context);
}

int
catalog_audit_list(struct catalog *catalog, int64_t since_ms, int limit,
		   int (*each)(const struct catalog_audit_entry *entry, void *context),
		   void *context)
{
	struct catalog_audit_reader reader = {each, context};
	char sql[400], since[32];
	int rows;

	snprintf(since, sizeof(since), "%lld", (long long)since_ms);
	snprintf(sql, sizeof(sql),
		 "SELECT * FROM (SELECT id, time_ms, token, role, client, method, path, object,"
		 " status FROM audit WHERE time_ms >= ?1 ORDER BY id DESC LIMIT %d) ORDER BY id",
		 limit > 0 ? limit : -1);
	return catalog_read_rows(catalog, sql, since, "audit list", catalog_audit_row, &reader,
				 &rows);
}
