/* The fixture of the catalog's unit tests: a fresh folder under /tmp with the path of its
 * catalog, the catalog opened in it (or not, for tests that prepare the file first), and a
 * teardown that closes it and removes the folder; and the helpers the tests share. Include it
 * after <cmocka.h>. */
#ifndef FERRY_TESTS_UNIT_CATALOG_FIXTURE_H
#define FERRY_TESTS_UNIT_CATALOG_FIXTURE_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "catalog/catalog.h"
#include "common/checksum.h"

struct fixture {
	char folder[256];
	char path[512]; /* folder/catalog.db */
	struct catalog *catalog;
};

static inline int
fixture_remove_entry(const char *path, const struct stat *info, int flag, struct FTW *walk)
{
	(void)info;
	(void)flag;
	(void)walk;
	return remove(path);
}

/* A fresh folder and its catalog path; the catalog is not opened. */
static inline int
setup_folder(void **state)
{
	struct fixture *fixture = calloc(1, sizeof(*fixture));

	if (fixture == NULL)
		return -1;
	snprintf(fixture->folder, sizeof(fixture->folder), "/tmp/ferry-test-catalog-XXXXXX");
	if (mkdtemp(fixture->folder) == NULL) {
		free(fixture);
		return -1;
	}
	snprintf(fixture->path, sizeof(fixture->path), "%s/catalog.db", fixture->folder);
	*state = fixture;
	return 0;
}

/* The folder, and the catalog opened in it. */
static inline int
setup_catalog(void **state)
{
	struct fixture *fixture;

	if (setup_folder(state) < 0)
		return -1;
	fixture = *state;
	return catalog_open(fixture->path, CATALOG_SYNC_NORMAL, &fixture->catalog) == 0 ? 0 : -1;
}

static inline int
teardown(void **state)
{
	struct fixture *fixture = *state;
	int rc;

	catalog_close(fixture->catalog);
	rc = nftw(fixture->folder, fixture_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fixture);
	return rc;
}

/* The catalog file opened with SQLite itself, for reading what is stored as it is. */
static inline sqlite3 *
open_raw(const char *path)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	return db;
}

/* A checksum that differs per segment index. */
static inline void
make_checksum(uint64_t index, struct checksum *sum)
{
	char text[32];

	snprintf(text, sizeof(text), "segment %llu", (unsigned long long)index);
	checksum_compute(text, strlen(text), sum);
}

#endif
