/* Unit tests for common/util: the helpers that stand between operator input and the file
 * system. Volume names become file names, so the refusals matter more than the acceptances;
 * token files and atomic writes are exercised in a mkdtemp() folder removed afterwards. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/error.h"
#include "common/util.h"

/* ---- temporary folder ---- */

struct folder {
	char path[256];
};

static int
remove_entry(const char *path, const struct stat *info, int flag, struct FTW *walk)
{
	(void)info;
	(void)flag;
	(void)walk;
	return remove(path);
}

static int
setup_folder(void **state)
{
	struct folder *folder = calloc(1, sizeof(*folder));

	if (folder == NULL)
		return -1;
	snprintf(folder->path, sizeof(folder->path), "/tmp/ferry-test-util-XXXXXX");
	if (mkdtemp(folder->path) == NULL) {
		free(folder);
		return -1;
	}
	*state = folder;
	return 0;
}

static int
teardown_folder(void **state)
{
	struct folder *folder = *state;
	int rc = nftw(folder->path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);

	free(folder);
	return rc;
}

/* Joins the test folder and a name into out (of PATH_SIZE bytes). */
#define PATH_SIZE 512

static void
folder_path(void **state, const char *name, char *out)
{
	const struct folder *folder = *state;
	int written = snprintf(out, PATH_SIZE, "%s/%s", folder->path, name);

	assert_true(written > 0 && written < PATH_SIZE);
}

static void
write_plain_file(const char *path, const char *text, size_t length)
{
	FILE *file = fopen(path, "wb");

	assert_non_null(file);
	assert_int_equal(fwrite(text, 1, length, file), length);
	assert_int_equal(fclose(file), 0);
}

/* ---- volume names ---- */

static void
test_volume_name_accepts(void **state)
{
	static const char *const good[] = {
		"a",	"vm1", "VM-01", "db_primary",	 "web-01.disk_2",
		"a..b", "x.",  "0",	"-leading-dash", "trailing_",
	};
	char longest[VOLUME_NAME_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(util_volume_name_valid(good[i]));
	memset(longest, 'v', VOLUME_NAME_MAX);
	longest[VOLUME_NAME_MAX] = '\0';
	assert_true(util_volume_name_valid(longest));
}

static void
test_volume_name_refuses(void **state)
{
	static const char *const bad[] = {
		"",    ".",   "..",  "../x", "a/b",	    "/abs",  "a/",    ".hidden",
		"..x", "a b", " a",  "a ",   "a\tb",	    "a\nb",  "a\\b",  "a:b",
		"a*",  "a?b", "a;b", "$(x)", "caf\xc3\xa9", "a\x7f", "a%2fb",
	};
	char too_long[VOLUME_NAME_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (util_volume_name_valid(bad[i]))
			fail_msg("volume name '%s' was accepted", bad[i]);
	}
	assert_false(util_volume_name_valid(NULL));
	memset(too_long, 'v', VOLUME_NAME_MAX + 1);
	too_long[VOLUME_NAME_MAX + 1] = '\0';
	assert_false(util_volume_name_valid(too_long));
}

/* ---- secrets ---- */

static void
test_secret_equal(void **state)
{
	(void)state;
	assert_true(util_secret_equal("", ""));
	assert_true(util_secret_equal("s3cret-token", "s3cret-token"));
	assert_false(util_secret_equal("s3cret-token", "s3cret-tokem"));
	assert_false(util_secret_equal("s3cret-token", "t3cret-token"));
	/* A prefix or an extension of the secret is not the secret. */
	assert_false(util_secret_equal("s3cret-token", "s3cret"));
	assert_false(util_secret_equal("s3cret", "s3cret-token"));
	assert_false(util_secret_equal("s3cret-token", ""));
	assert_false(util_secret_equal("", "s3cret-token"));
	assert_false(util_secret_equal("abc", "ABC"));
	/* Same length, differing only in the high bit. */
	assert_false(util_secret_equal("a", "\xe1"));
}

/* ---- sizes ---- */

static void
test_parse_size_accepts(void **state)
{
	static const struct {
		const char *text;
		uint64_t value;
	} cases[] = {
		{"12", 12},
		{"0", 0},
		{"4194304", 4194304},
		{"64k", 64 << 10},
		{"64K", 64 << 10},
		{"64KiB", 64 << 10},
		{"4M", 4 << 20},
		{"4m", 4 << 20},
		{"4MiB", 4 << 20},
		{"4MB", 4 << 20},
		{"1G", 1ull << 30},
		{"1GiB", 1ull << 30},
		{"1024G", 1ull << 40},
		{"18446744073709551615", UINT64_MAX},
		{"17179869183G", 17179869183ull << 30},
	};
	uint64_t value;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		value = 1234567;
		if (util_parse_size(cases[i].text, &value) != 0)
			fail_msg("size '%s' was refused", cases[i].text);
		if (value != cases[i].value)
			fail_msg("size '%s' parsed as %llu, expected %llu", cases[i].text,
				 (unsigned long long)value, (unsigned long long)cases[i].value);
	}
}

static void
test_parse_size_refuses(void **state)
{
	static const char *const bad[] = {
		"",
		"M",
		"k",
		"-1",
		"+4",
		" 4",
		"4 ",
		"4 M",
		"4X",
		"4Mi",
		"4MiBs",
		"4MM",
		"4.5M",
		"0x10",
		"4iB",
		"4 MiB",
		"4M ",
		"18446744073709551616", /* 2^64 */
		"17179869184G",		/* 2^34 GiB = 2^64 */
		"99999999999999999999999",
	};
	uint64_t value = 777;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (util_parse_size(bad[i], &value) != FERRY_ERR_INVALID)
			fail_msg("size '%s' was not refused", bad[i]);
	}
	assert_int_equal(util_parse_size(NULL, &value), FERRY_ERR_INVALID);
	/* A refusal leaves the output alone. */
	assert_true(value == 777);
}

static void
test_format_bytes(void **state)
{
	char text[32];

	(void)state;
	util_format_bytes(0, text, sizeof(text));
	assert_string_equal(text, "0 B");
	util_format_bytes(1023, text, sizeof(text));
	assert_string_equal(text, "1023 B");
	util_format_bytes(1024, text, sizeof(text));
	assert_string_equal(text, "1.0 KiB");
	util_format_bytes(1.5 * (1 << 30), text, sizeof(text));
	assert_string_equal(text, "1.5 GiB");
	util_format_bytes(16.0 * 1024 * 1024 * 1024 * 1024, text, sizeof(text));
	assert_string_equal(text, "16.0 TiB");
}

/* ---- token files ---- */

static void
test_token_file_trims(void **state)
{
	static const char content[] = " \t\n  abc123-token\r\n\n  ";
	char path[PATH_SIZE];
	char *token = NULL;

	folder_path(state, "token", path);
	write_plain_file(path, content, sizeof(content) - 1);
	assert_int_equal(util_read_token_file(path, &token), 0);
	assert_non_null(token);
	assert_string_equal(token, "abc123-token");
	free(token);
}

static void
test_token_file_inner_space_kept(void **state)
{
	char path[PATH_SIZE];
	char *token = NULL;

	folder_path(state, "token", path);
	write_plain_file(path, "ab cd\n", 6);
	assert_int_equal(util_read_token_file(path, &token), 0);
	assert_string_equal(token, "ab cd");
	free(token);
}

static void
test_token_file_without_newline(void **state)
{
	char path[PATH_SIZE];
	char *token = NULL;

	folder_path(state, "token", path);
	write_plain_file(path, "x", 1);
	assert_int_equal(util_read_token_file(path, &token), 0);
	assert_string_equal(token, "x");
	free(token);
}

static void
test_token_file_empty_refused(void **state)
{
	char path[PATH_SIZE];
	char *token = NULL;

	folder_path(state, "empty", path);
	write_plain_file(path, "", 0);
	ferry_error_clear();
	assert_int_equal(util_read_token_file(path, &token), FERRY_ERR_INVALID);
	assert_null(token);
	assert_non_null(strstr(ferry_error_message(), path));
	assert_non_null(strstr(ferry_error_message(), "empty"));

	/* White space only is empty too. */
	write_plain_file(path, " \n\t\r\n", 5);
	assert_int_equal(util_read_token_file(path, &token), FERRY_ERR_INVALID);
	assert_null(token);
}

static void
test_token_file_missing(void **state)
{
	char path[PATH_SIZE];
	char *token = NULL;
	int rc;

	folder_path(state, "no-such-token", path);
	ferry_error_clear();
	rc = util_read_token_file(path, &token);
	assert_int_equal(rc, FERRY_ERR_NOT_FOUND);
	assert_int_equal(ferry_error_last_code(), FERRY_ERR_NOT_FOUND);
	assert_null(token);
	assert_non_null(strstr(ferry_error_message(), path));
}

static void
test_token_file_missing_keeps_cause(void **state)
{
	/* The operator needs the reason (ENOENT, EACCES, ...) as well as the path. */
	char path[PATH_SIZE];
	char *token = NULL;

	folder_path(state, "no-such-token", path);
	ferry_error_clear();
	assert_int_equal(util_read_token_file(path, &token), FERRY_ERR_NOT_FOUND);
	if (strstr(ferry_error_message(), strerror(ENOENT)) == NULL)
		fail_msg("message lost its cause: \"%s\"", ferry_error_message());
}

static void
test_token_file_null_path(void **state)
{
	char *token = NULL;

	(void)state;
	ferry_error_clear();
	assert_int_equal(util_read_token_file(NULL, &token), FERRY_ERR_INVALID);
	assert_null(token);
	assert_non_null(strstr(ferry_error_message(), "--token-file"));
}

static void
test_token_file_too_large(void **state)
{
	char path[PATH_SIZE];
	char *content = malloc(TOKEN_MAX + 1), *token = NULL;

	assert_non_null(content);
	memset(content, 'a', TOKEN_MAX + 1);
	folder_path(state, "huge", path);
	write_plain_file(path, content, TOKEN_MAX + 1);
	assert_int_equal(util_read_token_file(path, &token), FERRY_ERR_TOO_LARGE);
	assert_null(token);
	/* Exactly TOKEN_MAX bytes is still fine. */
	write_plain_file(path, content, TOKEN_MAX);
	assert_int_equal(util_read_token_file(path, &token), 0);
	assert_int_equal(strlen(token), TOKEN_MAX);
	free(token);
	free(content);
}

/* ---- files ---- */

static void
test_write_file_atomic_creates_and_replaces(void **state)
{
	char path[PATH_SIZE], temporary[PATH_SIZE + 8];
	char *data = NULL;
	size_t length = 0;
	struct stat info;

	folder_path(state, "config.json", path);
	snprintf(temporary, sizeof(temporary), "%s.tmp", path);

	assert_int_equal(util_write_file_atomic(path, "first version", 13, 0600), 0);
	assert_int_equal(util_read_file(path, 1024, &data, &length), 0);
	assert_int_equal(length, 13);
	assert_string_equal(data, "first version");
	free(data);
	assert_int_equal(stat(path, &info), 0);
	assert_int_equal(info.st_mode & 0777, 0600);

	/* A shorter second version replaces the first entirely (no stale tail). */
	assert_int_equal(util_write_file_atomic(path, "v2", 2, 0600), 0);
	assert_int_equal(util_read_file(path, 1024, &data, &length), 0);
	assert_int_equal(length, 2);
	assert_string_equal(data, "v2");
	free(data);
	/* The temporary file is gone once the rename is done. */
	assert_int_equal(access(temporary, F_OK), -1);

	/* Binary content with NUL bytes and an empty file. */
	assert_int_equal(util_write_file_atomic(path, "a\0b", 3, 0600), 0);
	assert_int_equal(util_read_file(path, 1024, &data, &length), 0);
	assert_int_equal(length, 3);
	assert_memory_equal(data, "a\0b", 3);
	free(data);
	assert_int_equal(util_write_file_atomic(path, "", 0, 0600), 0);
	assert_int_equal(util_read_file(path, 1024, &data, &length), 0);
	assert_int_equal(length, 0);
	free(data);
}

static void
test_write_file_atomic_missing_folder(void **state)
{
	char path[PATH_SIZE];

	folder_path(state, "no-such-folder/file", path);
	ferry_error_clear();
	assert_int_equal(util_write_file_atomic(path, "x", 1, 0600), FERRY_ERR_IO);
	assert_non_null(strstr(ferry_error_message(), "no-such-folder"));
	assert_int_equal(access(path, F_OK), -1);
}

static void
test_read_file_limits(void **state)
{
	char path[PATH_SIZE];
	char *data = NULL;
	size_t length = 0;

	folder_path(state, "ten", path);
	write_plain_file(path, "0123456789", 10);
	assert_int_equal(util_read_file(path, 10, &data, &length), 0);
	assert_int_equal(length, 10);
	assert_string_equal(data, "0123456789");
	free(data);
	data = NULL;
	assert_int_equal(util_read_file(path, 9, &data, &length), FERRY_ERR_TOO_LARGE);
	assert_null(data);
	folder_path(state, "absent", path);
	assert_int_equal(util_read_file(path, 9, &data, &length), FERRY_ERR_NOT_FOUND);
	assert_null(data);
}

static void
test_mkdir_p(void **state)
{
	char path[PATH_SIZE];
	struct stat info;

	folder_path(state, "a/b/c", path);
	assert_int_equal(util_mkdir_p(path, 0700), 0);
	assert_int_equal(stat(path, &info), 0);
	assert_true(S_ISDIR(info.st_mode));
	/* Creating it again is not an error. */
	assert_int_equal(util_mkdir_p(path, 0700), 0);
	assert_int_equal(util_fsync_dir(path), 0);
	assert_int_equal(util_mkdir_p("", 0700), FERRY_ERR_INVALID);
}

static void
test_clocks(void **state)
{
	double before, after;
	int64_t now = util_now_ms();

	(void)state;
	/* After 2020-01-01 and before 2100-01-01, in milliseconds. */
	assert_true(now > 1577836800000ll);
	assert_true(now < 4102444800000ll);
	before = util_monotonic_seconds();
	after = util_monotonic_seconds();
	assert_true(after >= before);
}

static void
test_utf8_sanitize_keeps_text_and_replaces_broken_bytes(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"plain ascii", "plain ascii"},
		{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
		{"cut \xc3", "cut ?"},	 /* a sequence cut short */
		{"\xff\xfe", "??"},	 /* never valid */
		{"\xc0\xaf", "??"},	 /* overlong '/' */
		{"\xed\xa0\x80", "???"}, /* a surrogate */
		{"\xe2\x82", "??"},	 /* three bytes announced, two given */
		{"a\x80"
		 "b",
		 "a?b"}, /* a lone continuation byte */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[64];

		snprintf(text, sizeof(text), "%s", cases[i].in);
		util_utf8_sanitize(text);
		assert_string_equal(text, cases[i].out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_sanitize_keeps_text_and_replaces_broken_bytes),
		cmocka_unit_test(test_volume_name_accepts),
		cmocka_unit_test(test_volume_name_refuses),
		cmocka_unit_test(test_secret_equal),
		cmocka_unit_test(test_parse_size_accepts),
		cmocka_unit_test(test_parse_size_refuses),
		cmocka_unit_test(test_format_bytes),
		cmocka_unit_test_setup_teardown(test_token_file_trims, setup_folder,
						teardown_folder),
		cmocka_unit_test_setup_teardown(test_token_file_inner_space_kept, setup_folder,
						teardown_folder),
		cmocka_unit_test_setup_teardown(test_token_file_without_newline, setup_folder,
						teardown_folder),
		cmocka_unit_test_setup_teardown(test_token_file_empty_refused, setup_folder,
						teardown_folder),
		cmocka_unit_test_setup_teardown(test_token_file_missing, setup_folder,
						teardown_folder),
		cmocka_unit_test_setup_teardown(test_token_file_missing_keeps_cause, setup_folder,
						teardown_folder),
		cmocka_unit_test(test_token_file_null_path),
		cmocka_unit_test_setup_teardown(test_token_file_too_large, setup_folder,
						teardown_folder),
		cmocka_unit_test_setup_teardown(test_write_file_atomic_creates_and_replaces,
						setup_folder, teardown_folder),
		cmocka_unit_test_setup_teardown(test_write_file_atomic_missing_folder, setup_folder,
						teardown_folder),
		cmocka_unit_test_setup_teardown(test_read_file_limits, setup_folder,
						teardown_folder),
		cmocka_unit_test_setup_teardown(test_mkdir_p, setup_folder, teardown_folder),
		cmocka_unit_test(test_clocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
