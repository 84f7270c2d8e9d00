/* Unit tests for common/checksum: XXH3-128 in canonical form, its hex text, the shortcut for
 * zero segments, and the whole-volume digest. Sender and receiver must compute identical
 * values independently, so the known vectors below come from `xxhsum -H2` (which prints the
 * canonical big-endian form), not from this code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/checksum.h"
#include "common/error.h"

static void
test_known_vectors(void **state)
{
	struct checksum sum;
	char hex[CHECKSUM_HEX_LENGTH + 1];

	(void)state;
	checksum_compute("", 0, &sum);
	checksum_to_hex(&sum, hex);
	assert_string_equal(hex, "99aa06d3014798d86001c324468d497f");
	checksum_compute("abc", 3, &sum);
	checksum_to_hex(&sum, hex);
	assert_string_equal(hex, "06b05ab6733a618578af5f94892f3950");
}

static void
test_hex_roundtrip(void **state)
{
	struct checksum sum, back;
	char hex[CHECKSUM_HEX_LENGTH + 1];
	uint8_t data[1000];

	(void)state;
	for (size_t length = 0; length < sizeof(data); length += 37) {
		for (size_t i = 0; i < length; i++)
			data[i] = (uint8_t)(i * 31 + length);
		checksum_compute(data, length, &sum);
		memset(hex, 'x', sizeof(hex));
		checksum_to_hex(&sum, hex);
		assert_int_equal(strlen(hex), CHECKSUM_HEX_LENGTH);
		for (size_t i = 0; i < CHECKSUM_HEX_LENGTH; i++)
			assert_non_null(strchr("0123456789abcdef", hex[i]));
		memset(&back, 0, sizeof(back));
		assert_int_equal(checksum_from_hex(hex, &back), 0);
		assert_memory_equal(back.bytes, sum.bytes, CHECKSUM_BYTES);
	}
}

static void
test_hex_every_byte_value(void **state)
{
	struct checksum sum, back;
	char hex[CHECKSUM_HEX_LENGTH + 1];

	(void)state;
	/* Every byte value appears at every position across the 16 rounds. */
	for (int round = 0; round < 16; round++) {
		for (int i = 0; i < CHECKSUM_BYTES; i++)
			sum.bytes[i] = (uint8_t)(round * 16 + i);
		checksum_to_hex(&sum, hex);
		assert_int_equal(checksum_from_hex(hex, &back), 0);
		assert_memory_equal(back.bytes, sum.bytes, CHECKSUM_BYTES);
	}
	memset(sum.bytes, 0xab, CHECKSUM_BYTES);
	sum.bytes[0] = 0x01;
	sum.bytes[15] = 0xf0;
	checksum_to_hex(&sum, hex);
	assert_string_equal(hex, "01abababababababababababababab"
				 "f0");
}

static void
test_from_hex_uppercase(void **state)
{
	struct checksum lower, upper;

	(void)state;
	assert_int_equal(checksum_from_hex("99aa06d3014798d86001c324468d497f", &lower), 0);
	assert_int_equal(checksum_from_hex("99AA06D3014798D86001C324468D497F", &upper), 0);
	assert_memory_equal(lower.bytes, upper.bytes, CHECKSUM_BYTES);
	assert_int_equal(lower.bytes[0], 0x99);
	assert_int_equal(lower.bytes[15], 0x7f);
}

static void
test_from_hex_refusals(void **state)
{
	static const char *const bad[] = {
		"",
		"0",
		"99aa06d3014798d86001c324468d497",   /* 31 digits */
		"99aa06d3014798d86001c324468d497f0", /* 33 digits */
		"99aa06d3014798d86001c324468d497g",  /* not a digit at the end */
		"g9aa06d3014798d86001c324468d497f",  /* nor at the start */
		"99aa06d3014798d8 001c324468d497f",  /* a space inside */
		" 99aa06d3014798d86001c324468d497",  /* a leading space */
		"99aa06d3014798d86001c324468d497 ",  /* a trailing space */
		"0x99aa06d3014798d86001c324468d49",  /* a C prefix */
		"99aa06d3014798d86001c324468d49-f",
		"99aa06d3014798d86001c324468d49:f",
		"99aa06d3014798d86001c324468d49/f",
		"99aa06d3014798d86001c324468d49@f",
		"99aa06d3014798d86001c324468d49`f",
		"99aa06d3014798d86001c324468d49Gf",
		"xxh3-128:99aa06d3014798d86001c324468d497f",
	};
	struct checksum sum;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(checksum_from_hex(bad[i], &sum), FERRY_ERR_INVALID);
	assert_int_equal(checksum_from_hex(NULL, &sum), FERRY_ERR_INVALID);
}

static void
test_is_unset(void **state)
{
	struct checksum sum;

	(void)state;
	memset(&sum, 0, sizeof(sum));
	assert_true(checksum_is_unset(&sum));
	for (int i = 0; i < CHECKSUM_BYTES; i++) {
		sum.bytes[i] = 1;
		assert_false(checksum_is_unset(&sum));
		sum.bytes[i] = 0;
	}
	/* A real checksum, even of nothing or of zeroes, is never all zero bytes. */
	checksum_compute("", 0, &sum);
	assert_false(checksum_is_unset(&sum));
	checksum_of_zeroes(4096, &sum);
	assert_false(checksum_is_unset(&sum));
}

static void
test_of_zeroes_matches_compute(void **state)
{
	/* Around the 65536-byte chunk of the streaming implementation, and a default segment
	 * plus a few bytes. */
	static const size_t lengths[] = {0,	1,     7,      4095,   4096,   65535,
					 65536, 65537, 100000, 131072, 131073, (4u << 20) + 3};
	const size_t largest = (4u << 20) + 3;
	uint8_t *zeroes = calloc(1, largest);
	struct checksum expected, got;

	(void)state;
	assert_non_null(zeroes);
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		checksum_compute(zeroes, lengths[i], &expected);
		memset(&got, 0x55, sizeof(got));
		checksum_of_zeroes(lengths[i], &got);
		assert_memory_equal(got.bytes, expected.bytes, CHECKSUM_BYTES);
	}
	free(zeroes);
}

static void
test_of_zeroes_known_vector(void **state)
{
	struct checksum sum;
	char hex[CHECKSUM_HEX_LENGTH + 1];

	(void)state;
	/* head -c 100000 /dev/zero | xxhsum -H2 */
	checksum_of_zeroes(100000, &sum);
	checksum_to_hex(&sum, hex);
	assert_string_equal(hex, "e1f876364c6fec62315c72a64b7df4d2");
}

static void
test_digest_format_and_vector(void **state)
{
	uint8_t sums[2 * CHECKSUM_BYTES];
	char digest[DIGEST_STRING_SIZE];

	(void)state;
	/* Two unset checksums are 32 zero bytes: head -c 32 /dev/zero | xxhsum -H2 */
	memset(sums, 0, sizeof(sums));
	memset(digest, 'x', sizeof(digest));
	checksum_digest(sums, 2, digest);
	assert_string_equal(digest, "xxh3-128:9a026d96b3c0f0fca057271c9071c99d");
	assert_int_equal(strlen(digest), DIGEST_STRING_SIZE - 1);
	/* No checksums at all is the checksum of no bytes. */
	checksum_digest(sums, 0, digest);
	assert_string_equal(digest, "xxh3-128:99aa06d3014798d86001c324468d497f");
}

static void
test_digest_stable_and_sensitive(void **state)
{
	enum { COUNT = 64 };
	uint8_t *sums = malloc(COUNT * CHECKSUM_BYTES);
	char first[DIGEST_STRING_SIZE], second[DIGEST_STRING_SIZE], changed[DIGEST_STRING_SIZE];

	(void)state;
	assert_non_null(sums);
	for (uint64_t i = 0; i < COUNT; i++) {
		uint8_t segment[64];
		struct checksum sum;

		memset(segment, (int)i, sizeof(segment));
		checksum_compute(segment, sizeof(segment), &sum);
		memcpy(sums + i * CHECKSUM_BYTES, sum.bytes, CHECKSUM_BYTES);
	}
	checksum_digest(sums, COUNT, first);
	checksum_digest(sums, COUNT, second);
	assert_string_equal(first, second);
	assert_int_equal(strncmp(first, DIGEST_PREFIX, strlen(DIGEST_PREFIX)), 0);

	/* One bit of one checksum, at each position, changes the digest. */
	for (uint64_t i = 0; i < COUNT; i++) {
		uint8_t *byte = sums + i * CHECKSUM_BYTES + (i % CHECKSUM_BYTES);

		*byte ^= 0x01;
		checksum_digest(sums, COUNT, changed);
		assert_string_not_equal(changed, first);
		*byte ^= 0x01;
	}
	checksum_digest(sums, COUNT, changed);
	assert_string_equal(changed, first);

	/* Order matters: swapping two segments' checksums changes the digest. */
	{
		uint8_t swap[CHECKSUM_BYTES];

		memcpy(swap, sums, CHECKSUM_BYTES);
		memcpy(sums, sums + CHECKSUM_BYTES, CHECKSUM_BYTES);
		memcpy(sums + CHECKSUM_BYTES, swap, CHECKSUM_BYTES);
		checksum_digest(sums, COUNT, changed);
		assert_string_not_equal(changed, first);
	}

	/* A prefix of the checksums is a different volume. */
	checksum_digest(sums, COUNT - 1, changed);
	assert_string_not_equal(changed, first);
	free(sums);
}

/* The digest of a delta covers its member segments only, in order; over every segment it is
 * the whole-volume digest. */
static void
test_digest_ranges(void **state)
{
	enum { COUNT = 10 };
	uint8_t sums[COUNT * CHECKSUM_BYTES], picked[4 * CHECKSUM_BYTES];
	char whole[DIGEST_STRING_SIZE], ranged[DIGEST_STRING_SIZE], expected[DIGEST_STRING_SIZE];
	struct range_set ranges;

	(void)state;
	for (int i = 0; i < COUNT; i++) {
		struct checksum sum;

		checksum_compute(&i, sizeof(i), &sum);
		memcpy(sums + i * CHECKSUM_BYTES, sum.bytes, CHECKSUM_BYTES);
	}
	range_set_init(&ranges);
	assert_int_equal(range_set_add(&ranges, 0, COUNT - 1), 0);
	checksum_digest(sums, COUNT, whole);
	checksum_digest_ranges(sums, &ranges, ranged);
	assert_string_equal(ranged, whole);

	/* Segments 2, 3 and 7, 8: the digest equals that of those four checksums alone. */
	range_set_clear(&ranges);
	assert_int_equal(range_set_add(&ranges, 7, 8), 0);
	assert_int_equal(range_set_add(&ranges, 2, 3), 0);
	memcpy(picked, sums + 2 * CHECKSUM_BYTES, 2 * CHECKSUM_BYTES);
	memcpy(picked + 2 * CHECKSUM_BYTES, sums + 7 * CHECKSUM_BYTES, 2 * CHECKSUM_BYTES);
	checksum_digest(picked, 4, expected);
	checksum_digest_ranges(sums, &ranges, ranged);
	assert_string_equal(ranged, expected);
	assert_string_not_equal(ranged, whole);

	/* A change outside the members does not matter; inside, it does. */
	sums[0] ^= 1;
	checksum_digest_ranges(sums, &ranges, ranged);
	assert_string_equal(ranged, expected);
	sums[7 * CHECKSUM_BYTES] ^= 1;
	checksum_digest_ranges(sums, &ranges, ranged);
	assert_string_not_equal(ranged, expected);
	range_set_free(&ranges);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vectors),
		cmocka_unit_test(test_hex_roundtrip),
		cmocka_unit_test(test_hex_every_byte_value),
		cmocka_unit_test(test_from_hex_uppercase),
		cmocka_unit_test(test_from_hex_refusals),
		cmocka_unit_test(test_is_unset),
		cmocka_unit_test(test_of_zeroes_matches_compute),
		cmocka_unit_test(test_of_zeroes_known_vector),
		cmocka_unit_test(test_digest_format_and_vector),
		cmocka_unit_test(test_digest_stable_and_sensitive),
		cmocka_unit_test(test_digest_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
