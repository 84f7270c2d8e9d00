/* libFuzzer target: range sets (common/range_set.c) against a plain model. The first byte
 * chooses a window of 256 indexes (at 0, at 2^32, or ending at UINT64_MAX, where last + 1
 * overflows); the rest are operations of three bytes (what, a, b): add [a, b] (refused when
 * a > b), ask whether a is held, or clear. After each operation the set must equal a bitmap of
 * the window and keep its own invariants: ranges sorted, disjoint, never adjacent. A second
 * mode (first byte odd) takes raw 64-bit bounds from anywhere and checks only the invariants. */
#include "common/error.h"
#include "tests/fuzz/fuzz.h"
#include "common/range_set.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
fuzz_invariants(const struct range_set *set)
{
	fuzz_check(set->count <= set->capacity, "count above capacity");
	for (size_t i = 0; i < set->count; i++) {
		fuzz_check(set->ranges[i].first <= set->ranges[i].last, "range backwards");
		fuzz_check(range_set_contains(set, set->ranges[i].first), "first not contained");
		fuzz_check(range_set_contains(set, set->ranges[i].last), "last not contained");
		if (i > 0)
			fuzz_check(set->ranges[i - 1].last < UINT64_MAX &&
					   set->ranges[i - 1].last + 1 < set->ranges[i].first,
				   "ranges overlap, touch or are out of order");
		if (i > 0)
			fuzz_check(!range_set_contains(set, set->ranges[i - 1].last + 1),
				   "gap contained");
	}
}

static void
fuzz_model(const uint8_t *data, size_t size, uint64_t base)
{
	struct range_set set;
	bool model[256] = {false};

	range_set_init(&set);
	for (size_t at = 0; at + 3 <= size; at += 3) {
		uint8_t what = data[at] % 8, a = data[at + 1], b = data[at + 2];
		uint64_t count = 0;

		if (what == 7) {
			range_set_clear(&set);
			memset(model, 0, sizeof(model));
		} else if (what == 6) {
			fuzz_check(range_set_contains(&set, base + a) == model[a],
				   "contains wrong");
		} else {
			int rc = range_set_add(&set, base + a, base + b);

			fuzz_check(rc == (a > b ? FERRY_ERR_INVALID : 0), "add answered wrong");
			for (unsigned i = a; rc == 0 && i <= b; i++)
				model[i] = true;
		}
		fuzz_invariants(&set);
		for (unsigned i = 0; i < 256; i++) {
			fuzz_check(range_set_contains(&set, base + i) == model[i],
				   "set differs from the model");
			count += model[i];
		}
		fuzz_check(range_set_size(&set) == count, "size differs from the model");
		/* Nothing outside the window. */
		if (base > 0)
			fuzz_check(!range_set_contains(&set, base - 1), "holds below the window");
		if (base + 255 < UINT64_MAX)
			fuzz_check(!range_set_contains(&set, base + 256), "holds above the window");
	}
	range_set_free(&set);
}

static uint64_t
fuzz_u64(const uint8_t *bytes)
{
	uint64_t value = 0;

	for (int i = 0; i < 8; i++)
		value |= (uint64_t)bytes[i] << (8 * i);
	return value;
}

static void
fuzz_wide(const uint8_t *data, size_t size)
{
	struct range_set set;

	range_set_init(&set);
	for (size_t at = 0; at + 16 <= size; at += 16) {
		uint64_t first = fuzz_u64(data + at), last = fuzz_u64(data + at + 8);
		int rc = range_set_add(&set, first, last);

		fuzz_check(rc == (first > last ? FERRY_ERR_INVALID : 0), "add answered wrong");
		if (rc == 0)
			fuzz_check(range_set_contains(&set, first) &&
					   range_set_contains(&set, last) &&
					   range_set_contains(&set, first + (last - first) / 2),
				   "added range not held");
		fuzz_invariants(&set);
	}
	range_set_free(&set);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t bases[] = {0, UINT64_C(1) << 32, UINT64_MAX - 255};

	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_wide(data + 1, size - 1);
	else
		fuzz_model(data + 1, size - 1, bases[(data[0] >> 1) % 3]);
	ferry_error_clear();
	return 0;
}
