/* The scratch state folder and the check of the libFuzzer targets (tests/fuzz/fuzz.h). */
#include "tests/fuzz/fuzz.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char fuzz_dir[256];
static bool fuzz_exit_hooked;

static int
fuzz_remove_one(const char *path, const struct stat *status, int type, struct FTW *walk)
{
	(void)status;
	(void)type;
	(void)walk;
	remove(path);
	return 0;
}

static void
fuzz_state_remove(void)
{
	if (fuzz_dir[0])
		nftw(fuzz_dir, fuzz_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *
fuzz_state_dir(void)
{
	if (fuzz_dir[0])
		return fuzz_dir;
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/ferry-fuzz-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (mkdtemp(fuzz_dir) == NULL) {
		perror("fuzz: mkdtemp");
		abort();
	}
	if (!fuzz_exit_hooked)
		atexit(fuzz_state_remove);
	fuzz_exit_hooked = true;
	return fuzz_dir;
}

const char *
fuzz_state_dir_fresh(void)
{
	fuzz_state_remove();
	fuzz_dir[0] = '\0';
	return fuzz_state_dir();
}

void
fuzz_check(bool condition, const char *what)
{
	if (!condition) {
		fprintf(stderr, "fuzz: %s\n", what);
		abort();
	}
}
