/* The failover's point choice (cutover/point_choice.c) driven by case files, one case per file
 * in tests/data/point-choice/ (FERRY_TEST_DATA overrides tests/data): "want N", then per VM
 * "vm NAME" and one "disk P P ..." line per disk, then either "group N" and one
 * "expect NAME POINT shares|apart" per VM, or "error NAME" for a refusal naming that VM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>

#include "cutover/internal.h"

#define CASE_VMS_MAX	16
#define CASE_POINTS_MAX 64

struct case_vm {
	char name[64];
	int64_t points[CASE_POINTS_MAX];
	size_t count;
	int disks;
	/* expected */
	int64_t point;
	bool shares, expected;
};

struct case_file {
	int64_t want, group;
	struct case_vm vms[CASE_VMS_MAX];
	size_t vm_count;
	char error_vm[64];
};

static struct case_vm *
case_vm_named(struct case_file *c, const char *name)
{
	for (size_t i = 0; i < c->vm_count; i++)
		if (strcmp(c->vms[i].name, name) == 0)
			return &c->vms[i];
	fail_msg("no vm %s in the case", name);
	return NULL;
}

/* A disk line: the VM keeps the points all its disks so far hold. */
static void
case_disk(struct case_vm *vm, char *list)
{
	int64_t points[CASE_POINTS_MAX];
	size_t count = 0;

	for (char *word = strtok(list, " \t\n"); word; word = strtok(NULL, " \t\n")) {
		assert_true(count < CASE_POINTS_MAX);
		assert_int_equal(util_parse_int64(word, 1, INT64_MAX, &points[count]), 0);
		count++;
	}
	if (vm->disks++ == 0) {
		memcpy(vm->points, points, count * sizeof(points[0]));
		vm->count = count;
	} else {
		vm->count = cutover_point_intersect(vm->points, vm->count, points, count);
	}
}

static void
case_read(const char *path, struct case_file *c)
{
	FILE *file = fopen(path, "r");
	char line[512], name[64], how[16];
	long long number;

	assert_non_null(file);
	memset(c, 0, sizeof(*c));
	while (fgets(line, sizeof(line), file)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "want %lld", &number) == 1) {
			c->want = number;
		} else if (sscanf(line, "vm %63s", name) == 1) {
			assert_true(c->vm_count < CASE_VMS_MAX);
			snprintf(c->vms[c->vm_count++].name, sizeof(name), "%s", name);
		} else if (strncmp(line, "disk ", 5) == 0) {
			assert_true(c->vm_count > 0);
			case_disk(&c->vms[c->vm_count - 1], line + 5);
		} else if (sscanf(line, "group %lld", &number) == 1) {
			c->group = number;
		} else if (sscanf(line, "expect %63s %lld %15s", name, &number, how) == 3) {
			struct case_vm *vm = case_vm_named(c, name);

			vm->point = number;
			vm->shares = strcmp(how, "shares") == 0;
			vm->expected = true;
		} else if (sscanf(line, "error %63s", name) == 1) {
			snprintf(c->error_vm, sizeof(c->error_vm), "%s", name);
		} else {
			fail_msg("%s: cannot read '%s'", path, line);
		}
	}
	fclose(file);
}

static void
test_point_choice_case(void **state)
{
	const char *path = *state;
	struct case_file c;
	struct cutover_point_set sets[CASE_VMS_MAX];
	struct cutover_point_choice choices[CASE_VMS_MAX];
	int64_t group = -1;
	size_t missing = 0, empty = CASE_VMS_MAX;
	int rc;

	case_read(path, &c);
	assert_true(c.vm_count > 0);
	for (size_t i = 0; i < c.vm_count; i++) {
		sets[i] = (struct cutover_point_set){c.vms[i].points, c.vms[i].count};
		if (c.vms[i].count == 0 && empty == CASE_VMS_MAX)
			empty = i; /* its disks share no instant: activate.c refuses it */
	}
	if (empty != CASE_VMS_MAX) {
		assert_string_equal(c.vms[empty].name, c.error_vm);
		return;
	}
	rc = cutover_point_choose(sets, c.vm_count, c.want, choices, &group, &missing);
	if (c.error_vm[0]) {
		assert_int_equal(rc, FERRY_ERR_NOT_FOUND);
		assert_true(missing < c.vm_count);
		assert_string_equal(c.vms[missing].name, c.error_vm);
		return;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(group, c.group);
	for (size_t i = 0; i < c.vm_count; i++) {
		assert_true(c.vms[i].expected);
		if (choices[i].point != c.vms[i].point || choices[i].shares != c.vms[i].shares)
			fail_msg("%s: vm %s came up from %lld (%s), expected %lld (%s)", path,
				 c.vms[i].name, (long long)choices[i].point,
				 choices[i].shares ? "shares" : "apart", (long long)c.vms[i].point,
				 c.vms[i].shares ? "shares" : "apart");
	}
}

static int
case_compare(const void *a, const void *b)
{
	return strcmp(((const struct CMUnitTest *)a)->name, ((const struct CMUnitTest *)b)->name);
}

int
main(void)
{
	const char *data = getenv("FERRY_TEST_DATA") ? getenv("FERRY_TEST_DATA") : "tests/data";
	struct CMUnitTest tests[256];
	char folder[512], *paths[256];
	size_t count = 0;
	struct dirent *entry;
	DIR *dir;
	int failed;

	snprintf(folder, sizeof(folder), "%s/point-choice", data);
	dir = opendir(folder);
	if (dir == NULL) {
		fprintf(stderr, "test_point_choice: cannot open %s (run from the checkout's top)\n",
			folder);
		return 1;
	}
	while ((entry = readdir(dir)) != NULL && count < 256) {
		size_t length = strlen(entry->d_name);

		if (length < 6 || strcmp(entry->d_name + length - 5, ".case") != 0)
			continue;
		paths[count] = malloc(strlen(folder) + length + 2);
		if (paths[count] == NULL)
			return 1;
		sprintf(paths[count], "%s/%s", folder, entry->d_name);
		tests[count] = (struct CMUnitTest){paths[count], test_point_choice_case, NULL, NULL,
						   paths[count]};
		count++;
	}
	closedir(dir);
	if (count < 10) {
		fprintf(stderr, "test_point_choice: only %zu cases in %s\n", count, folder);
		return 1;
	}
	qsort(tests, count, sizeof(tests[0]), case_compare);
	failed = _cmocka_run_group_tests("point_choice", tests, count, NULL, NULL);
	for (size_t i = 0; i < count; i++)
		free(paths[i]);
	return failed;
}
