/* libFuzzer target: the segment codec as a receiver meets it (common/segment.c). The first byte
 * chooses what the rest is:
 *   0  a zstd body and the plain length the headers promise (segment_decode);
 *   1  a zstd body for an extents segment, decoded with a ceiling (segment_decode_bounded),
 *      then its extent table read and applied over a segment as the receiver does;
 *   2  a packed extent table alone (segment_extents_unpack), applied the same way;
 *   3  plain bytes: encoded then decoded, and extents found in them packed then unpacked, both
 *      of which must give back exactly what went in.
 * Bytes 1-4 are a little-endian length (the plain or segment length, cut to 256 KiB), the rest
 * is the body. A decoder that accepts what it should refuse writes out of bounds, which ASan
 * reports; a round trip that changes the bytes aborts. */
#include "common/error.h"
#include "tests/fuzz/fuzz.h"
#include "common/segment.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_SEGMENT_MAX (256u << 10)

static struct segment_codec *fuzz_codec;
static struct segment_extent fuzz_extents[SEGMENT_EXTENTS_MAX];

/* Applies unpacked extents over a segment of segment_length bytes, as the receiver does. */
static void
fuzz_extents_apply(const uint8_t *packed, size_t packed_length, size_t segment_length)
{
	const uint8_t *extent_data;
	uint8_t *segment;
	size_t count = 0;

	if (segment_extents_unpack(packed, packed_length, segment_length, fuzz_extents, &count,
				   &extent_data) < 0)
		return;
	fuzz_check(count >= 1 && count <= SEGMENT_EXTENTS_MAX, "extent count out of bounds");
	segment = calloc(1, segment_length ? segment_length : 1);
	fuzz_check(segment != NULL, "no memory");
	for (size_t i = 0; i < count; i++) {
		fuzz_check(extent_data >= packed && extent_data <= packed + packed_length,
			   "extent data outside the packed form");
		memcpy(segment + fuzz_extents[i].offset, extent_data, fuzz_extents[i].length);
		extent_data += fuzz_extents[i].length;
	}
	fuzz_check(extent_data == packed + packed_length, "extent data not used up exactly");
	free(segment);
}

static void
fuzz_decode(const uint8_t *body, size_t body_length, size_t plain_length)
{
	uint8_t *plain = malloc(plain_length ? plain_length : 1);

	fuzz_check(plain != NULL, "no memory");
	(void)segment_decode(fuzz_codec, body, body_length, plain, plain_length);
	free(plain);
}

static void
fuzz_decode_extents(const uint8_t *body, size_t body_length, size_t segment_length)
{
	size_t capacity = segment_extents_packed_size(SEGMENT_EXTENTS_MAX, segment_length);
	uint8_t *packed = malloc(capacity);
	size_t packed_length = 0;

	fuzz_check(packed != NULL, "no memory");
	if (segment_decode_bounded(fuzz_codec, body, body_length, packed, capacity,
				   &packed_length) == 0) {
		fuzz_check(packed_length <= capacity, "decoded beyond the ceiling");
		fuzz_extents_apply(packed, packed_length, segment_length);
	}
	free(packed);
}

/* Encodes plain and decodes it back; finds its non-zero blocks as extents, packs and unpacks
 * them, and rebuilds the segment from them. */
static void
fuzz_round_trip(const uint8_t *plain, size_t length)
{
	size_t bound = segment_encoded_bound(length), encoded_length = 0, count = 0,
	       data_length = 0;
	uint8_t *encoded = malloc(bound), *decoded = malloc(length ? length : 1), *packed;
	const uint8_t *extent_data;

	fuzz_check(encoded && decoded, "no memory");
	fuzz_check(segment_encode(fuzz_codec, plain, length, encoded, bound, &encoded_length) == 0,
		   "encode failed");
	fuzz_check(segment_decode(fuzz_codec, encoded, encoded_length, decoded, length) == 0,
		   "own frame does not decode");
	fuzz_check(memcmp(plain, decoded, length) == 0, "zstd round trip changed the bytes");
	fuzz_check(segment_is_zero(plain, length) ==
			   (length == 0 ||
			    (plain[0] == 0 && memcmp(plain, plain + 1, length - 1) == 0)),
		   "segment_is_zero is wrong");
	for (size_t offset = 0; offset < length && count < SEGMENT_EXTENTS_MAX; offset += 64) {
		size_t block = length - offset < 64 ? length - offset : 64;

		if (segment_is_zero(plain + offset, block))
			continue;
		if (count &&
		    fuzz_extents[count - 1].offset + fuzz_extents[count - 1].length == offset)
			fuzz_extents[count - 1].length += (uint32_t)block;
		else
			fuzz_extents[count++] =
				(struct segment_extent){(uint32_t)offset, (uint32_t)block};
		data_length += block;
	}
	packed = malloc(segment_extents_packed_size(count, data_length));
	fuzz_check(packed != NULL, "no memory");
	fuzz_check(segment_extents_pack(plain, fuzz_extents, count, packed) ==
			   segment_extents_packed_size(count, data_length),
		   "packed length differs from its size");
	if (count > 0) {
		size_t packed_length = segment_extents_packed_size(count, data_length);

		fuzz_check(segment_extents_unpack(packed, packed_length, length, fuzz_extents,
						  &count, &extent_data) == 0,
			   "own extent table refused");
		memset(decoded, 0, length);
		for (size_t i = 0; i < count; i++) {
			memcpy(decoded + fuzz_extents[i].offset, extent_data,
			       fuzz_extents[i].length);
			extent_data += fuzz_extents[i].length;
		}
		/* Past the first SEGMENT_EXTENTS_MAX extents the rest was not packed. */
		if (count < SEGMENT_EXTENTS_MAX)
			fuzz_check(memcmp(plain, decoded, length) == 0,
				   "extent round trip changed the bytes");
	}
	free(packed);
	free(encoded);
	free(decoded);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t length;

	if (fuzz_codec == NULL)
		fuzz_codec = segment_codec_new(1);
	fuzz_check(fuzz_codec != NULL, "no codec");
	if (size < 5)
		return 0;
	length = ((uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 |
		  (uint32_t)data[4] << 24) %
		 (FUZZ_SEGMENT_MAX + 1);
	switch (data[0] % 4) {
	case 0: fuzz_decode(data + 5, size - 5, length); break;
	case 1: fuzz_decode_extents(data + 5, size - 5, length); break;
	case 2: fuzz_extents_apply(data + 5, size - 5, length); break;
	default: fuzz_round_trip(data + 5, size - 5); break;
	}
	ferry_error_clear();
	return 0;
}
