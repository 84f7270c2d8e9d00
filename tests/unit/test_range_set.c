/* Unit tests for common/range_set: the sorted, merged ranges that hold a transfer's progress.
 * Besides hand-picked merges, a randomized test checks the set against a plain bool array, and
 * the edges near 0 and UINT64_MAX are checked because the merge arithmetic (first - 1, last + 1)
 * is where an off-by-one or an overflow would hide. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/error.h"
#include "common/range_set.h"

/* Checks that the set holds exactly the ranges in `expected` (pairs first, last), in order. */
static void
assert_ranges(const struct range_set *set, const uint64_t *expected, size_t pairs)
{
	assert_int_equal(set->count, pairs);
	for (size_t i = 0; i < pairs; i++) {
		assert_true(set->ranges[i].first == expected[2 * i]);
		assert_true(set->ranges[i].last == expected[2 * i + 1]);
	}
}

/* The structural invariant the header promises: sorted, disjoint and never touching. */
static void
assert_well_formed(const struct range_set *set)
{
	for (size_t i = 0; i < set->count; i++) {
		assert_true(set->ranges[i].first <= set->ranges[i].last);
		if (i > 0)
			assert_true(set->ranges[i - 1].last + 1 < set->ranges[i].first);
	}
}

static void
test_empty(void **state)
{
	struct range_set set;

	(void)state;
	range_set_init(&set);
	assert_int_equal(set.count, 0);
	assert_false(range_set_contains(&set, 0));
	assert_false(range_set_contains(&set, UINT64_MAX));
	assert_true(range_set_size(&set) == 0);
	range_set_free(&set);
}

static void
test_add_single(void **state)
{
	struct range_set set;
	const uint64_t expected[] = {5, 9};

	(void)state;
	range_set_init(&set);
	assert_int_equal(range_set_add(&set, 5, 9), 0);
	assert_ranges(&set, expected, 1);
	assert_false(range_set_contains(&set, 4));
	assert_true(range_set_contains(&set, 5));
	assert_true(range_set_contains(&set, 7));
	assert_true(range_set_contains(&set, 9));
	assert_false(range_set_contains(&set, 10));
	assert_true(range_set_size(&set) == 5);
	range_set_free(&set);
}

static void
test_add_reversed_refused(void **state)
{
	struct range_set set;

	(void)state;
	range_set_init(&set);
	assert_int_equal(range_set_add(&set, 9, 5), FERRY_ERR_INVALID);
	assert_int_equal(set.count, 0);
	range_set_free(&set);
}

static void
test_merge_adjacent_after(void **state)
{
	struct range_set set;
	const uint64_t expected[] = {0, 19};

	(void)state;
	range_set_init(&set);
	assert_int_equal(range_set_add(&set, 0, 9), 0);
	assert_int_equal(range_set_add(&set, 10, 19), 0);
	assert_ranges(&set, expected, 1);
	range_set_free(&set);
}

static void
test_merge_adjacent_before(void **state)
{
	struct range_set set;
	const uint64_t expected[] = {0, 19};

	(void)state;
	range_set_init(&set);
	assert_int_equal(range_set_add(&set, 10, 19), 0);
	assert_int_equal(range_set_add(&set, 0, 9), 0);
	assert_ranges(&set, expected, 1);
	range_set_free(&set);
}

static void
test_gap_of_one_not_merged(void **state)
{
	struct range_set set;
	const uint64_t expected[] = {0, 9, 11, 19};

	(void)state;
	range_set_init(&set);
	assert_int_equal(range_set_add(&set, 0, 9), 0);
	assert_int_equal(range_set_add(&set, 11, 19), 0);
	assert_ranges(&set, expected, 2);
	assert_false(range_set_contains(&set, 10));
	assert_true(range_set_size(&set) == 19);
	range_set_free(&set);
}

static void
test_merge_overlapping(void **state)
{
	struct range_set set;
	const uint64_t expected[] = {0, 25};
	const uint64_t expected_after_inner[] = {0, 25};

	(void)state;
	range_set_init(&set);
	assert_int_equal(range_set_add(&set, 0, 15), 0);
	assert_int_equal(range_set_add(&set, 10, 25), 0);
	assert_ranges(&set, expected, 1);
	/* An add that lies wholly inside changes nothing. */
	assert_int_equal(range_set_add(&set, 3, 7), 0);
	assert_ranges(&set, expected_after_inner, 1);
	assert_true(range_set_size(&set) == 26);
	range_set_free(&set);
}

static void
test_merge_bridging_several(void **state)
{
	struct range_set set;
	const uint64_t before[] = {0, 1, 10, 11, 20, 21, 30, 31, 40, 41};
	const uint64_t after[] = {0, 1, 9, 32, 40, 41};

	(void)state;
	range_set_init(&set);
	for (uint64_t i = 0; i < 5; i++)
		assert_int_equal(range_set_add(&set, i * 10, i * 10 + 1), 0);
	assert_ranges(&set, before, 5);
	/* Touches [10,11] on the left through 9 and [30,31] on the right through 32, swallowing
	 * [20,21] in between, so three ranges become one and the tail moves down. */
	assert_int_equal(range_set_add(&set, 9, 32), 0);
	assert_ranges(&set, after, 3);
	assert_true(range_set_size(&set) == 2 + 24 + 2);
	assert_well_formed(&set);
	range_set_free(&set);
}

static void
test_merge_bridging_exact_gap(void **state)
{
	struct range_set set;
	const uint64_t expected[] = {0, 30};

	(void)state;
	range_set_init(&set);
	assert_int_equal(range_set_add(&set, 0, 9), 0);
	assert_int_equal(range_set_add(&set, 21, 30), 0);
	/* Fills exactly the hole: touches both neighbours without overlapping either. */
	assert_int_equal(range_set_add(&set, 10, 20), 0);
	assert_ranges(&set, expected, 1);
	range_set_free(&set);
}

static void
test_out_of_order_singletons(void **state)
{
	static const uint64_t order[] = {7, 3, 9, 1, 5, 0, 8, 2, 6, 4};
	struct range_set set;
	const uint64_t expected[] = {0, 9};

	(void)state;
	range_set_init(&set);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		assert_int_equal(range_set_add(&set, order[i], order[i]), 0);
		assert_well_formed(&set);
	}
	assert_ranges(&set, expected, 1);
	assert_true(range_set_size(&set) == 10);
	range_set_free(&set);
}

static void
test_insert_in_front_and_middle(void **state)
{
	struct range_set set;
	const uint64_t expected[] = {10, 10, 20, 20, 30, 30, 40, 40, 50, 50};

	(void)state;
	range_set_init(&set);
	assert_int_equal(range_set_add(&set, 50, 50), 0);
	assert_int_equal(range_set_add(&set, 30, 30), 0);
	assert_int_equal(range_set_add(&set, 10, 10), 0);
	assert_int_equal(range_set_add(&set, 40, 40), 0);
	assert_int_equal(range_set_add(&set, 20, 20), 0);
	assert_ranges(&set, expected, 5);
	range_set_free(&set);
}

static void
test_grows_past_initial_capacity(void **state)
{
	struct range_set set;

	(void)state;
	range_set_init(&set);
	/* Even indexes only: 1000 separate ranges force several reallocations. */
	for (uint64_t i = 0; i < 1000; i++)
		assert_int_equal(range_set_add(&set, 2 * i, 2 * i), 0);
	assert_int_equal(set.count, 1000);
	assert_true(set.capacity >= 1000);
	assert_true(range_set_size(&set) == 1000);
	for (uint64_t i = 0; i < 2000; i++)
		assert_true(range_set_contains(&set, i) == (i % 2 == 0));
	/* The odd indexes close every gap. */
	for (uint64_t i = 0; i < 999; i++)
		assert_int_equal(range_set_add(&set, 2 * i + 1, 2 * i + 1), 0);
	assert_int_equal(set.count, 1);
	assert_true(range_set_size(&set) == 1999);
	range_set_free(&set);
}

static void
test_clear_and_reuse(void **state)
{
	struct range_set set;
	const uint64_t expected[] = {100, 100};

	(void)state;
	range_set_init(&set);
	assert_int_equal(range_set_add(&set, 0, 10), 0);
	assert_int_equal(range_set_add(&set, 20, 30), 0);
	range_set_clear(&set);
	assert_int_equal(set.count, 0);
	assert_false(range_set_contains(&set, 5));
	assert_true(range_set_size(&set) == 0);
	assert_int_equal(range_set_add(&set, 100, 100), 0);
	assert_ranges(&set, expected, 1);
	range_set_free(&set);
	assert_null(set.ranges);
	assert_int_equal(set.count, 0);
}

static void
test_zero_edge(void **state)
{
	struct range_set set;
	const uint64_t expected[] = {0, 2};

	(void)state;
	range_set_init(&set);
	/* first - 1 must not wrap to UINT64_MAX when first is 0. */
	assert_int_equal(range_set_add(&set, 1, 2), 0);
	assert_int_equal(range_set_add(&set, 0, 0), 0);
	assert_ranges(&set, expected, 1);
	assert_true(range_set_contains(&set, 0));
	assert_false(range_set_contains(&set, 3));
	range_set_free(&set);
}

static void
test_large_indexes(void **state)
{
	struct range_set set;
	const uint64_t separate[] = {0,		0, UINT64_MAX - 10, UINT64_MAX - 5, UINT64_MAX - 1,
				     UINT64_MAX};
	const uint64_t merged[] = {0, 0, UINT64_MAX - 10, UINT64_MAX};

	(void)state;
	range_set_init(&set);
	assert_int_equal(range_set_add(&set, UINT64_MAX - 1, UINT64_MAX), 0);
	assert_int_equal(range_set_add(&set, UINT64_MAX - 10, UINT64_MAX - 5), 0);
	assert_int_equal(range_set_add(&set, 0, 0), 0);
	/* last + 1 would wrap at UINT64_MAX: a set ending there must not absorb index 0. */
	assert_ranges(&set, separate, 3);
	assert_true(range_set_contains(&set, UINT64_MAX));
	assert_true(range_set_contains(&set, UINT64_MAX - 1));
	assert_false(range_set_contains(&set, UINT64_MAX - 2));
	assert_false(range_set_contains(&set, UINT64_MAX - 4));
	assert_true(range_set_contains(&set, UINT64_MAX - 5));
	assert_false(range_set_contains(&set, 1));
	assert_true(range_set_size(&set) == 1 + 6 + 2);

	assert_int_equal(range_set_add(&set, UINT64_MAX - 4, UINT64_MAX - 2), 0);
	assert_ranges(&set, merged, 2);
	assert_true(range_set_size(&set) == 1 + 11);

	/* Adding the very last index again is idempotent. */
	assert_int_equal(range_set_add(&set, UINT64_MAX, UINT64_MAX), 0);
	assert_ranges(&set, merged, 2);
	range_set_free(&set);
}

static void
test_large_range_size(void **state)
{
	struct range_set set;

	(void)state;
	range_set_init(&set);
	assert_int_equal(range_set_add(&set, 1, UINT64_MAX), 0);
	assert_int_equal(set.count, 1);
	assert_true(range_set_size(&set) == UINT64_MAX);
	assert_true(range_set_contains(&set, UINT64_MAX / 2));
	assert_false(range_set_contains(&set, 0));
	range_set_free(&set);
}

/* A small deterministic generator (xorshift64*), so the randomized test is the same on every
 * host and a failure can be replayed. */
static uint64_t
next_random(uint64_t *seed)
{
	uint64_t x = *seed;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*seed = x;
	return x * 2685821657736338717ull;
}

#define MODEL_SIZE 2048u

static void
test_randomized_against_bool_array(void **state)
{
	struct range_set set;
	bool *model = calloc(MODEL_SIZE, sizeof(*model));
	uint64_t seed = 0x5eed5eed12345678ull;

	(void)state;
	assert_non_null(model);
	range_set_init(&set);
	for (int round = 0; round < 4000; round++) {
		uint64_t first = next_random(&seed) % MODEL_SIZE;
		/* Mostly short ranges, sometimes long ones, so both merges and gaps occur. */
		uint64_t span = next_random(&seed) % (round % 10 == 0 ? 200 : 4);
		uint64_t last = first + span < MODEL_SIZE ? first + span : MODEL_SIZE - 1;
		uint64_t expected_size = 0;

		assert_int_equal(range_set_add(&set, first, last), 0);
		for (uint64_t i = first; i <= last; i++)
			model[i] = true;
		assert_well_formed(&set);
		if (round % 97 != 0 && round != 3999)
			continue;
		for (uint64_t i = 0; i < MODEL_SIZE; i++) {
			assert_true(range_set_contains(&set, i) == model[i]);
			expected_size += model[i];
		}
		assert_true(range_set_size(&set) == expected_size);
		assert_false(range_set_contains(&set, MODEL_SIZE));
		/* Restart now and then so the set is often sparse rather than one full range. */
		if (round % 970 == 0 && round > 0) {
			range_set_clear(&set);
			for (uint64_t i = 0; i < MODEL_SIZE; i++)
				model[i] = false;
		}
	}
	range_set_free(&set);
	free(model);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_add_single),
		cmocka_unit_test(test_add_reversed_refused),
		cmocka_unit_test(test_merge_adjacent_after),
		cmocka_unit_test(test_merge_adjacent_before),
		cmocka_unit_test(test_gap_of_one_not_merged),
		cmocka_unit_test(test_merge_overlapping),
		cmocka_unit_test(test_merge_bridging_several),
		cmocka_unit_test(test_merge_bridging_exact_gap),
		cmocka_unit_test(test_out_of_order_singletons),
		cmocka_unit_test(test_insert_in_front_and_middle),
		cmocka_unit_test(test_grows_past_initial_capacity),
		cmocka_unit_test(test_clear_and_reuse),
		cmocka_unit_test(test_zero_edge),
		cmocka_unit_test(test_large_indexes),
		cmocka_unit_test(test_large_range_size),
		cmocka_unit_test(test_randomized_against_bool_array),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
