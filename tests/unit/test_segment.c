/* Unit tests for common/segment: zero detection and the zstd codec.
 * segment_is_zero() reads words after an unaligned head, so it is checked at every start offset
 * with a single nonzero byte at every position, and with nonzero bytes just outside the range
 * (which it must not look at). The decoder is the receiver's guard against a malformed body, so
 * most tests here are refusals: truncated, trailing bytes, wrong declared size, garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zstd.h>

#include "common/error.h"
#include "common/segment.h"

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

static void
fill_random(uint8_t *buffer, size_t length, uint64_t *seed)
{
	for (size_t i = 0; i < length; i++)
		buffer[i] = (uint8_t)(next_random(seed) >> 56);
}

/* Plain bytes that compress well but are not all zero: what a real disk segment looks like. */
static void
fill_text(uint8_t *buffer, size_t length)
{
	static const char line[] = "ferry replicates volumes segment by segment\n";

	for (size_t i = 0; i < length; i++)
		buffer[i] = (uint8_t)line[i % (sizeof(line) - 1)];
}

static int
setup_codec(void **state)
{
	struct segment_codec *codec = segment_codec_new(3);

	if (codec == NULL)
		return -1;
	*state = codec;
	return 0;
}

static int
teardown_codec(void **state)
{
	segment_codec_free(*state);
	return 0;
}

/* Encodes plain into a freshly allocated buffer of segment_encoded_bound() bytes. */
static uint8_t *
encode_or_fail(struct segment_codec *codec, const uint8_t *plain, size_t length,
	       size_t *encoded_length)
{
	size_t capacity = segment_encoded_bound(length);
	uint8_t *encoded = malloc(capacity);

	assert_non_null(encoded);
	assert_int_equal(segment_encode(codec, plain, length, encoded, capacity, encoded_length),
			 0);
	assert_true(*encoded_length > 0);
	assert_true(*encoded_length <= capacity);
	return encoded;
}

/* ---- zero detection ---- */

static void
test_is_zero_empty(void **state)
{
	uint8_t byte = 1;

	(void)state;
	assert_int_equal(segment_is_zero(&byte, 0), 1);
}

static void
test_is_zero_every_start_and_length(void **state)
{
	/* 8-aligned storage so that offset 0..7 covers every alignment of the start. */
	uint64_t storage[16];
	uint8_t *base = (uint8_t *)storage;

	(void)state;
	for (size_t offset = 0; offset < 8; offset++) {
		for (size_t length = 0; length <= 64; length++) {
			memset(storage, 0, sizeof(storage));
			assert_int_equal(segment_is_zero(base + offset, length), 1);
			for (size_t at = 0; at < length; at++) {
				base[offset + at] = 0x80;
				assert_int_equal(segment_is_zero(base + offset, length), 0);
				base[offset + at] = 0;
			}
			/* Bytes just before and just after the range are not its business. */
			memset(storage, 0xff, sizeof(storage));
			memset(base + offset, 0, length);
			assert_int_equal(segment_is_zero(base + offset, length), 1);
		}
	}
}

static void
test_is_zero_small_buffer_every_position(void **state)
{
	/* A heap buffer of an odd size: ASan catches any read past its end. */
	const size_t length = 37;
	uint8_t *buffer = calloc(1, length);

	(void)state;
	assert_non_null(buffer);
	assert_int_equal(segment_is_zero(buffer, length), 1);
	for (size_t at = 0; at < length; at++) {
		buffer[at] = 1;
		assert_int_equal(segment_is_zero(buffer, length), 0);
		/* Also from an unaligned start that still covers `at`. */
		if (at >= 3)
			assert_int_equal(segment_is_zero(buffer + 3, length - 3), 0);
		else
			assert_int_equal(segment_is_zero(buffer + 3, length - 3), 1);
		buffer[at] = 0;
	}
	free(buffer);
}

static void
test_is_zero_large(void **state)
{
	const size_t length = SEGMENT_SIZE_MIN * 4 + 5;
	uint8_t *buffer = calloc(1, length);

	(void)state;
	assert_non_null(buffer);
	assert_int_equal(segment_is_zero(buffer, length), 1);
	buffer[length - 1] = 0x01;
	assert_int_equal(segment_is_zero(buffer, length), 0);
	assert_int_equal(segment_is_zero(buffer, length - 1), 1);
	buffer[length - 1] = 0;
	buffer[SEGMENT_SIZE_MIN * 2] = 0x40;
	assert_int_equal(segment_is_zero(buffer + 1, length - 1), 0);
	free(buffer);
}

/* ---- codec ---- */

static void
roundtrip(struct segment_codec *codec, const uint8_t *plain, size_t length)
{
	size_t encoded_length = 0;
	uint8_t *encoded = encode_or_fail(codec, plain, length, &encoded_length);
	uint8_t *decoded = malloc(length);

	assert_non_null(decoded);
	memset(decoded, 0xa5, length);
	assert_int_equal(segment_decode(codec, encoded, encoded_length, decoded, length), 0);
	assert_memory_equal(decoded, plain, length);
	free(decoded);
	free(encoded);
}

static void
test_roundtrip_text(void **state)
{
	const size_t lengths[] = {1, 7, SEGMENT_SIZE_MIN, SEGMENT_SIZE_MIN + 3,
				  SEGMENT_SIZE_DEFAULT};
	uint8_t *plain = malloc(SEGMENT_SIZE_DEFAULT);

	assert_non_null(plain);
	fill_text(plain, SEGMENT_SIZE_DEFAULT);
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++)
		roundtrip(*state, plain, lengths[i]);
	free(plain);
}

static void
test_roundtrip_random(void **state)
{
	/* Incompressible bytes: the frame is stored raw and may be larger than the input. */
	const size_t length = 256 * 1024 + 11;
	uint8_t *plain = malloc(length);
	uint64_t seed = 42;

	assert_non_null(plain);
	fill_random(plain, length, &seed);
	roundtrip(*state, plain, length);
	free(plain);
}

static void
test_roundtrip_zeroes_compress(void **state)
{
	const size_t length = SEGMENT_SIZE_DEFAULT;
	uint8_t *plain = calloc(1, length);
	size_t encoded_length = 0;
	uint8_t *encoded;

	assert_non_null(plain);
	encoded = encode_or_fail(*state, plain, length, &encoded_length);
	assert_true(encoded_length < length / 100);
	free(encoded);
	roundtrip(*state, plain, length);
	free(plain);
}

static void
test_codec_reused(void **state)
{
	/* One codec per thread serves many segments: a failed decode must not poison the next. */
	const size_t length = 10000;
	uint8_t plain[10000], decoded[10000];
	size_t encoded_length = 0;
	uint8_t *encoded;

	fill_text(plain, length);
	encoded = encode_or_fail(*state, plain, length, &encoded_length);
	assert_int_equal(segment_decode(*state, encoded, encoded_length / 2, decoded, length),
			 FERRY_ERR_INVALID);
	assert_int_equal(segment_decode(*state, encoded, encoded_length, decoded, length), 0);
	assert_memory_equal(decoded, plain, length);
	free(encoded);
}

static void
test_encode_bound(void **state)
{
	(void)state;
	assert_true(segment_encoded_bound(0) > 0);
	assert_true(segment_encoded_bound(SEGMENT_SIZE_MIN) >= SEGMENT_SIZE_MIN);
	assert_true(segment_encoded_bound(SEGMENT_SIZE_MAX) >= SEGMENT_SIZE_MAX);
}

static void
test_encode_out_too_small(void **state)
{
	uint8_t plain[4096], out[16];
	size_t encoded_length = 12345;
	uint64_t seed = 7;

	fill_random(plain, sizeof(plain), &seed);
	ferry_error_clear();
	assert_true(segment_encode(*state, plain, sizeof(plain), out, sizeof(out),
				   &encoded_length) < 0);
	assert_true(encoded_length == 12345);
	assert_string_not_equal(ferry_error_message(), "");
}

static void
test_decode_refuses_truncated(void **state)
{
	const size_t length = 64 * 1024;
	uint8_t *plain = malloc(length), *decoded = malloc(length);
	size_t encoded_length = 0;
	uint8_t *encoded;

	assert_non_null(plain);
	assert_non_null(decoded);
	fill_text(plain, length);
	encoded = encode_or_fail(*state, plain, length, &encoded_length);
	for (size_t cut = 0; cut < encoded_length; cut++) {
		ferry_error_clear();
		assert_int_equal(segment_decode(*state, encoded, cut, decoded, length),
				 FERRY_ERR_INVALID);
		assert_string_not_equal(ferry_error_message(), "");
	}
	free(encoded);
	free(decoded);
	free(plain);
}

static void
test_decode_refuses_trailing_bytes(void **state)
{
	static const uint8_t skippable[] = {0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 'a', 'b', 'c', 'd'};
	const size_t length = 8192;
	uint8_t *plain = malloc(length), *decoded = malloc(length);
	size_t encoded_length = 0;
	uint8_t *encoded, *padded;

	assert_non_null(plain);
	assert_non_null(decoded);
	fill_text(plain, length);
	encoded = encode_or_fail(*state, plain, length, &encoded_length);
	padded = malloc(2 * encoded_length + 16);
	assert_non_null(padded);

	/* One stray byte, a few zero bytes, and a whole second frame: all refused. */
	memcpy(padded, encoded, encoded_length);
	padded[encoded_length] = 0x42;
	assert_int_equal(segment_decode(*state, padded, encoded_length + 1, decoded, length),
			 FERRY_ERR_INVALID);
	memset(padded + encoded_length, 0, 16);
	assert_int_equal(segment_decode(*state, padded, encoded_length + 16, decoded, length),
			 FERRY_ERR_INVALID);
	memcpy(padded + encoded_length, encoded, encoded_length);
	assert_int_equal(segment_decode(*state, padded, 2 * encoded_length, decoded, length),
			 FERRY_ERR_INVALID);
	assert_int_equal(segment_decode(*state, padded, 2 * encoded_length, decoded, 2 * length),
			 FERRY_ERR_INVALID);
	/* A skippable frame (magic 0x184D2A50, little-endian size, then that many bytes) after
	 * the data frame: zstd's own decompressor skips it silently, so only the decoder's
	 * "exactly one frame" rule refuses it. */
	memcpy(padded + encoded_length, skippable, sizeof(skippable));
	assert_int_equal(
		segment_decode(*state, padded, encoded_length + sizeof(skippable), decoded, length),
		FERRY_ERR_INVALID);
	free(padded);
	free(encoded);
	free(decoded);
	free(plain);
}

static void
test_decode_refuses_wrong_length(void **state)
{
	const size_t length = 8192;
	uint8_t *plain = malloc(length), *decoded = malloc(length + 1);
	size_t encoded_length = 0;
	uint8_t *encoded;

	assert_non_null(plain);
	assert_non_null(decoded);
	fill_text(plain, length);
	encoded = encode_or_fail(*state, plain, length, &encoded_length);
	ferry_error_clear();
	assert_int_equal(segment_decode(*state, encoded, encoded_length, decoded, length - 1),
			 FERRY_ERR_INVALID);
	assert_non_null(strstr(ferry_error_message(), "8192"));
	assert_int_equal(segment_decode(*state, encoded, encoded_length, decoded, length + 1),
			 FERRY_ERR_INVALID);
	assert_int_equal(segment_decode(*state, encoded, encoded_length, decoded, 1),
			 FERRY_ERR_INVALID);
	free(encoded);
	free(decoded);
	free(plain);
}

static void
test_decode_refuses_undeclared_size(void **state)
{
	/* A frame that does not declare its content size (streaming compressors may omit it)
	 * cannot be checked against the segment length before decoding, so it is refused. */
	const size_t length = 4096;
	uint8_t plain[4096], decoded[4096];
	size_t capacity = ZSTD_compressBound(length), result;
	uint8_t *encoded = malloc(capacity);
	ZSTD_CCtx *context = ZSTD_createCCtx();
	ZSTD_inBuffer input = {plain, length, 0};
	ZSTD_outBuffer output;

	(void)state;
	assert_non_null(encoded);
	assert_non_null(context);
	output.dst = encoded;
	output.size = capacity;
	output.pos = 0;
	fill_text(plain, length);
	assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 0)));
	result = ZSTD_compressStream2(context, &output, &input, ZSTD_e_end);
	assert_int_equal(result, 0);
	assert_true(ZSTD_getFrameContentSize(encoded, output.pos) == ZSTD_CONTENTSIZE_UNKNOWN);
	assert_int_equal(segment_decode(*state, encoded, output.pos, decoded, length),
			 FERRY_ERR_INVALID);
	ZSTD_freeCCtx(context);
	free(encoded);
}

static void
test_decode_refuses_corrupted_body(void **state)
{
	/* Flip every byte of a frame in turn. zstd frames carry no checksum by default, so a flip
	 * inside literals may decode to other bytes (the segment checksum catches that later);
	 * flips in the frame and block headers must be refused, and under ASan no flip may make
	 * the decoder read or write out of bounds. */
	const size_t length = 16384;
	uint8_t *plain = malloc(length), *decoded = malloc(length);
	size_t encoded_length = 0;
	uint8_t *encoded;
	int refused = 0;

	assert_non_null(plain);
	assert_non_null(decoded);
	fill_text(plain, length);
	encoded = encode_or_fail(*state, plain, length, &encoded_length);
	for (size_t at = 0; at < encoded_length; at++) {
		encoded[at] ^= 0xff;
		if (segment_decode(*state, encoded, encoded_length, decoded, length) < 0)
			refused++;
		encoded[at] ^= 0xff;
	}
	assert_true(refused > 0);
	assert_int_equal(segment_decode(*state, encoded, encoded_length, decoded, length), 0);
	assert_memory_equal(decoded, plain, length);
	free(encoded);
	free(decoded);
	free(plain);
}

static void
test_decode_refuses_garbage(void **state)
{
	uint8_t garbage[512], decoded[4096];
	uint64_t seed = 0xdecafbadull;

	for (int round = 0; round < 500; round++) {
		size_t body_length = 1 + next_random(&seed) % sizeof(garbage);

		fill_random(garbage, body_length, &seed);
		assert_int_equal(
			segment_decode(*state, garbage, body_length, decoded, sizeof(decoded)),
			FERRY_ERR_INVALID);
	}
	/* The zstd magic number followed by garbage is still garbage. */
	for (int round = 0; round < 500; round++) {
		size_t body_length = 4 + next_random(&seed) % (sizeof(garbage) - 4);

		fill_random(garbage, body_length, &seed);
		garbage[0] = 0x28;
		garbage[1] = 0xb5;
		garbage[2] = 0x2f;
		garbage[3] = 0xfd;
		assert_int_equal(
			segment_decode(*state, garbage, body_length, decoded, sizeof(decoded)),
			FERRY_ERR_INVALID);
	}
	assert_int_equal(segment_decode(*state, garbage, 0, decoded, sizeof(decoded)),
			 FERRY_ERR_INVALID);
}

/* ---- encoding names ---- */

static void
test_encoding_names(void **state)
{
	enum segment_encoding encoding = SEGMENT_ENCODING_ZSTD;

	(void)state;
	assert_string_equal(segment_encoding_name(SEGMENT_ENCODING_ZERO), "zero");
	assert_string_equal(segment_encoding_name(SEGMENT_ENCODING_ZSTD), "zstd");
	assert_int_equal(segment_encoding_parse("zero", &encoding), 0);
	assert_int_equal(encoding, SEGMENT_ENCODING_ZERO);
	assert_int_equal(segment_encoding_parse("zstd", &encoding), 0);
	assert_int_equal(encoding, SEGMENT_ENCODING_ZSTD);
	/* Each name parses back to its encoding. */
	assert_int_equal(
		segment_encoding_parse(segment_encoding_name(SEGMENT_ENCODING_ZERO), &encoding), 0);
	assert_int_equal(encoding, SEGMENT_ENCODING_ZERO);
}

static void
test_encoding_parse_refusals(void **state)
{
	static const char *const bad[] = {"",	 "ZSTD",  "Zero", "zstd ", " zero",
					  "zst", "zstdx", "gzip", "raw"};
	enum segment_encoding encoding = SEGMENT_ENCODING_ZSTD;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(segment_encoding_parse(bad[i], &encoding), FERRY_ERR_INVALID);
		/* A refusal leaves the output alone. */
		assert_int_equal(encoding, SEGMENT_ENCODING_ZSTD);
	}
	assert_int_equal(segment_encoding_parse(NULL, &encoding), FERRY_ERR_INVALID);
}

/* Extent tables: a round trip, and every malformed table refused. */
static void
test_extents_pack_unpack(void **state)
{
	enum { SEGMENT = 65536 };
	static uint8_t plain[SEGMENT], packed[SEGMENT + 1024];
	struct segment_extent extents[3] = {{0, 100}, {4096, 4096}, {65000, 536}};
	struct segment_extent *got = calloc(SEGMENT_EXTENTS_MAX, sizeof(*got));
	const uint8_t *data;
	size_t length, count;

	(void)state;
	assert_non_null(got);
	for (size_t i = 0; i < SEGMENT; i++)
		plain[i] = (uint8_t)(i * 7 + 3);
	length = segment_extents_pack(plain, extents, 3, packed);
	assert_true(length == segment_extents_packed_size(3, 100 + 4096 + 536));
	assert_int_equal(segment_extents_unpack(packed, length, SEGMENT, got, &count, &data), 0);
	assert_true(count == 3);
	assert_true(got[1].offset == 4096 && got[1].length == 4096);
	assert_memory_equal(data, plain, 100);
	assert_memory_equal(data + 100, plain + 4096, 4096);
	assert_memory_equal(data + 4196, plain + 65000, 536);

	/* Outside a smaller segment, a truncated body, trailing bytes, a bad header. */
	assert_int_equal(segment_extents_unpack(packed, length, 65535, got, &count, &data),
			 FERRY_ERR_INVALID);
	assert_int_equal(segment_extents_unpack(packed, length - 1, SEGMENT, got, &count, &data),
			 FERRY_ERR_INVALID);
	assert_int_equal(segment_extents_unpack(packed, length + 1, SEGMENT, got, &count, &data),
			 FERRY_ERR_INVALID);
	packed[0] ^= 1;
	assert_int_equal(segment_extents_unpack(packed, length, SEGMENT, got, &count, &data),
			 FERRY_ERR_INVALID);
	packed[0] ^= 1;

	/* Overlapping, out of order, empty extents, and no extents at all. */
	extents[1].offset = 50;
	length = segment_extents_pack(plain, extents, 3, packed);
	assert_int_equal(segment_extents_unpack(packed, length, SEGMENT, got, &count, &data),
			 FERRY_ERR_INVALID);
	extents[1].offset = 4096;
	extents[1].length = 0;
	length = segment_extents_pack(plain, extents, 3, packed);
	assert_int_equal(segment_extents_unpack(packed, length, SEGMENT, got, &count, &data),
			 FERRY_ERR_INVALID);
	length = segment_extents_pack(plain, extents, 0, packed);
	assert_int_equal(segment_extents_unpack(packed, length, SEGMENT, got, &count, &data),
			 FERRY_ERR_INVALID);
	free(got);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_zero_empty),
		cmocka_unit_test(test_is_zero_every_start_and_length),
		cmocka_unit_test(test_is_zero_small_buffer_every_position),
		cmocka_unit_test(test_is_zero_large),
		cmocka_unit_test_setup_teardown(test_roundtrip_text, setup_codec, teardown_codec),
		cmocka_unit_test_setup_teardown(test_roundtrip_random, setup_codec, teardown_codec),
		cmocka_unit_test_setup_teardown(test_roundtrip_zeroes_compress, setup_codec,
						teardown_codec),
		cmocka_unit_test_setup_teardown(test_codec_reused, setup_codec, teardown_codec),
		cmocka_unit_test(test_encode_bound),
		cmocka_unit_test_setup_teardown(test_encode_out_too_small, setup_codec,
						teardown_codec),
		cmocka_unit_test_setup_teardown(test_decode_refuses_truncated, setup_codec,
						teardown_codec),
		cmocka_unit_test_setup_teardown(test_decode_refuses_trailing_bytes, setup_codec,
						teardown_codec),
		cmocka_unit_test_setup_teardown(test_decode_refuses_wrong_length, setup_codec,
						teardown_codec),
		cmocka_unit_test_setup_teardown(test_decode_refuses_undeclared_size, setup_codec,
						teardown_codec),
		cmocka_unit_test_setup_teardown(test_decode_refuses_corrupted_body, setup_codec,
						teardown_codec),
		cmocka_unit_test_setup_teardown(test_decode_refuses_garbage, setup_codec,
						teardown_codec),
		cmocka_unit_test(test_encoding_names),
		cmocka_unit_test(test_encoding_parse_refusals),
		cmocka_unit_test(test_extents_pack_unpack),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
