/* Who may do what at a site: API tokens with their roles (stored as hashes, never secrets), the
 * peer token that owns each received volume and VM record, and the audit log of every
 * mutating request. Statements follow the idiom of catalog_internal.h. */
#include "catalog/catalog_internal.h"
#include "common/error.h"

#include <string.h>

int
catalog_token_add(struct catalog *catalog, const struct catalog_token *token)
{
	int rc = catalog_write(catalog, "token add", NULL,
			       "INSERT INTO tokens (name, role, hash, created_ms, last_used_ms,"
			       " expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
			       "tttiii", token->name, token->role, token->hash, token->created_ms,
			       token->last_used_ms, token->expires_ms);

	if (rc == FERRY_ERR_CONFLICT)
		rc = ferry_error_set(
			FERRY_ERR_CONFLICT,
			"a token named %s exists already; revoke it first (ferry token "
			"revoke %s) or choose another name",
			token->name, token->name);
	return rc;
}

/* Hands each token (of hash, or all when hash is NULL) to each(); *rows counts them. */
static int
catalog_token_select(struct catalog *catalog, const char *hash,
		     int (*each)(const struct catalog_token *token, void *context), void *context,
		     int *rows)
{
	sqlite3_stmt *stmt = NULL;
	struct catalog_token token;
	int rc;

	*rows = 0;
	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt,
			       "SELECT name, role, hash, created_ms, last_used_ms, expires_ms"
			       " FROM tokens WHERE ?1 IS NULL OR hash = ?1 ORDER BY name",
			       "z", hash);
	if (rc < 0)
		goto out;
	while ((rc = catalog_step(catalog, stmt, "token list")) == CATALOG_ROW) {
		memset(&token, 0, sizeof(token));
		catalog_copy_text(token.name, sizeof(token.name), stmt, 0);
		catalog_copy_text(token.role, sizeof(token.role), stmt, 1);
		catalog_copy_text(token.hash, sizeof(token.hash), stmt, 2);
		token.created_ms = sqlite3_column_int64(stmt, 3);
		token.last_used_ms = sqlite3_column_int64(stmt, 4);
		token.expires_ms = sqlite3_column_int64(stmt, 5);
		(*rows)++;
		rc = each(&token, context);
		if (rc < 0)
			goto out;
	}
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
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
	int rows, rc;

	rc = catalog_token_select(catalog, hash, catalog_token_copy, out, &rows);
	if (rc == 0 && rows == 0)
		rc = FERRY_ERR_NOT_FOUND; /* not reported: the caller answers 401 */
	return rc;
}

int
catalog_token_list(struct catalog *catalog,
		   int (*each)(const struct catalog_token *token, void *context), void *context)
{
	int rows;

	return catalog_token_select(catalog, NULL, each, context, &rows);
}

int
catalog_token_revoke(struct catalog *catalog, const char *name)
{
	int64_t changes = 0;
	int rc = catalog_write(catalog, "token revoke", &changes,
			       "DELETE FROM tokens WHERE name = ?1", "t", name);

	if (rc == 0 && changes == 0)
		rc = ferry_error_set(FERRY_ERR_NOT_FOUND,
				     "no token named '%s' (ferry token list shows them)", name);
	return rc;
}

int
catalog_token_touch(struct catalog *catalog, const char *name, int64_t now_ms)
{
	return catalog_write(catalog, "token touch", NULL,
			     "UPDATE tokens SET last_used_ms = ?2 WHERE name = ?1", "ti", name,
			     now_ms);
}

/* ---- owners ---- */

int
catalog_owner_set(struct catalog *catalog, const char *kind, const char *name, const char *token)
{
	return catalog_write(catalog, "owner set", NULL,
			     "INSERT INTO owners (kind, name, token) VALUES (?1, ?2, ?3)"
			     " ON CONFLICT (kind, name) DO UPDATE SET token = ?3",
			     "ttt", kind, name, token);
}

int
catalog_owner_get(struct catalog *catalog, const char *kind, const char *name, char *token,
		  size_t size)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	token[0] = '\0';
	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt,
			       "SELECT token FROM owners WHERE kind = ?1 AND name = ?2", "tt", kind,
			       name);
	if (rc < 0)
		goto out;
	rc = catalog_step(catalog, stmt, "owner get");
	if (rc == CATALOG_ROW)
		catalog_copy_text(token, size, stmt, 0);
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}

/* ---- audit ---- */

int
catalog_audit_add(struct catalog *catalog, const struct catalog_audit_entry *entry, int64_t *id)
{
	bool owned = false;
	int rc = catalog_write_begin(catalog, &owned);

	if (rc < 0)
		return rc;
	rc = catalog_write(catalog, "audit add", NULL,
			   "INSERT INTO audit (time_ms, token, role, client, method, path,"
			   " object, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
			   "itttttti", entry->time_ms, entry->token, entry->role, entry->client,
			   entry->method, entry->path, entry->object, (int64_t)entry->status);
	if (rc == 0 && id)
		*id = sqlite3_last_insert_rowid(catalog->db);
	return catalog_write_end(catalog, owned, rc);
}

int
catalog_audit_finish(struct catalog *catalog, int64_t id, int status)
{
	return catalog_write(catalog, "audit finish", NULL,
			     "UPDATE audit SET status = ?2 WHERE id = ?1 AND status = 0", "ii", id,
			     (int64_t)status);
}

int
catalog_audit_list(struct catalog *catalog, int64_t since_ms, int limit,
		   int (*each)(const struct catalog_audit_entry *entry, void *context),
		   void *context)
{
	sqlite3_stmt *stmt = NULL;
	struct catalog_audit_entry entry;
	int rc;

	catalog_read_begin(catalog);
	rc = catalog_statement(catalog, &stmt,
			       "SELECT * FROM (SELECT id, time_ms, token, role, client, method,"
			       " path, object, status FROM audit WHERE time_ms >= ?1"
			       " ORDER BY id DESC LIMIT ?2) ORDER BY id",
			       "ii", since_ms, (int64_t)(limit > 0 ? limit : -1));
	if (rc < 0)
		goto out;
	while ((rc = catalog_step(catalog, stmt, "audit list")) == CATALOG_ROW) {
		memset(&entry, 0, sizeof(entry));
		entry.id = sqlite3_column_int64(stmt, 0);
		entry.time_ms = sqlite3_column_int64(stmt, 1);
		catalog_copy_text(entry.token, sizeof(entry.token), stmt, 2);
		catalog_copy_text(entry.role, sizeof(entry.role), stmt, 3);
		catalog_copy_text(entry.client, sizeof(entry.client), stmt, 4);
		catalog_copy_text(entry.method, sizeof(entry.method), stmt, 5);
		catalog_copy_text(entry.path, sizeof(entry.path), stmt, 6);
		catalog_copy_text(entry.object, sizeof(entry.object), stmt, 7);
		entry.status = sqlite3_column_int(stmt, 8);
		rc = each(&entry, context);
		if (rc < 0)
			goto out;
	}
out:
	sqlite3_finalize(stmt);
	return catalog_read_end(catalog, rc);
}
