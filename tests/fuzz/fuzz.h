/* What the libFuzzer targets of tests/fuzz/ share: a scratch state folder on tmpfs, removed at
 * exit, and a check that aborts (a finding) with a message. */
#ifndef FERRY_TESTS_FUZZ_H
#define FERRY_TESTS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fresh folder (in /dev/shm when it exists) for this process, removed with all it holds
 * when the process exits; aborts when it cannot be made. */
const char *fuzz_state_dir(void);
/* Removes the folder and makes a new, empty one. */
const char *fuzz_state_dir_fresh(void);
/* Aborts with "fuzz: what" unless condition holds. */
void fuzz_check(bool condition, const char *what);

#endif
