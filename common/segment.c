/* zstd frames for segments. The decoder is strict: one frame, declared content size equal to the
 * expected plain length, and no trailing bytes, so a malformed body can never write stray data. */
#include "common/segment.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

struct segment_codec {
	ZSTD_CCtx *compress;
	ZSTD_DCtx *decompress;
	int level;
};

const char *
segment_encoding_name(enum segment_encoding encoding)
{
	static const char *const names[] = {"zero", "zstd", "extents"};

	return names[encoding];
}

int
segment_encoding_parse(const char *name, enum segment_encoding *out)
{
	if (name && strcmp(name, "zero") == 0)
		*out = SEGMENT_ENCODING_ZERO;
	else if (name && strcmp(name, "zstd") == 0)
		*out = SEGMENT_ENCODING_ZSTD;
	else if (name && strcmp(name, "extents") == 0)
		*out = SEGMENT_ENCODING_EXTENTS;
	else
		return FERRY_ERR_INVALID;
	return 0;
}

int
segment_is_zero(const void *data, size_t length)
{
	const unsigned char *bytes = data;
	const uint64_t *words;
	size_t head = (size_t)((-(uintptr_t)bytes) & 7);

	if (head > length)
		head = length;
	for (size_t i = 0; i < head; i++)
		if (bytes[i])
			return 0;
	bytes += head;
	length -= head;
	words = (const uint64_t *)(const void *)bytes;
	for (size_t i = 0; i < length / 8; i++)
		if (words[i])
			return 0;
	for (size_t i = length & ~(size_t)7; i < length; i++)
		if (bytes[i])
			return 0;
	return 1;
}

size_t
segment_encoded_bound(size_t length)
{
	return ZSTD_compressBound(length);
}

struct segment_codec *
segment_codec_new(int zstd_level)
{
	struct segment_codec *codec = calloc(1, sizeof(*codec));

	if (codec == NULL)
		return NULL;
	codec->compress = ZSTD_createCCtx();
	codec->decompress = ZSTD_createDCtx();
	codec->level = zstd_level;
	if (codec->compress == NULL || codec->decompress == NULL) {
		segment_codec_free(codec);
		return NULL;
	}
	return codec;
}

void
segment_codec_free(struct segment_codec *codec)
{
	if (codec == NULL)
		return;
	ZSTD_freeCCtx(codec->compress);
	ZSTD_freeDCtx(codec->decompress);
	free(codec);
}

int
segment_encode(struct segment_codec *codec, const void *plain, size_t length, void *out,
	       size_t out_capacity, size_t *out_length)
{
	size_t result =
		ZSTD_compressCCtx(codec->compress, out, out_capacity, plain, length, codec->level);

	if (ZSTD_isError(result))
		return ferry_error_set(FERRY_ERR_INTERNAL, "zstd compression failed: %s",
				       ZSTD_getErrorName(result));
	*out_length = result;
	return 0;
}

#define SEGMENT_EXTENTS_MAGIC "FXT1"

static void
segment_put_u32(uint8_t *out, uint32_t value)
{
	for (int i = 0; i < 4; i++)
		out[i] = (uint8_t)(value >> (8 * i));
}

static uint32_t
segment_get_u32(const uint8_t *in)
{
	return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 |
	       (uint32_t)in[3] << 24;
}

size_t
segment_extents_packed_size(size_t count, size_t data_length)
{
	return 8 + 8 * count + data_length;
}

size_t
segment_extents_pack(const void *plain, const struct segment_extent *extents, size_t count,
		     void *out)
{
	uint8_t *cursor = out;

	memcpy(cursor, SEGMENT_EXTENTS_MAGIC, 4);
	segment_put_u32(cursor + 4, (uint32_t)count);
	cursor += 8;
	for (size_t i = 0; i < count; i++, cursor += 8) {
		segment_put_u32(cursor, extents[i].offset);
		segment_put_u32(cursor + 4, extents[i].length);
	}
	for (size_t i = 0; i < count; i++) {
		memcpy(cursor, (const uint8_t *)plain + extents[i].offset, extents[i].length);
		cursor += extents[i].length;
	}
	return (size_t)(cursor - (uint8_t *)out);
}

int
segment_extents_unpack(const void *packed, size_t packed_length, size_t segment_length,
		       struct segment_extent *extents, size_t *count, const uint8_t **data)
{
	const uint8_t *bytes = packed;
	uint64_t end = 0, total = 0;
	size_t n;

	if (packed_length < 8 || memcmp(bytes, SEGMENT_EXTENTS_MAGIC, 4) != 0)
		return ferry_error_set(FERRY_ERR_INVALID, "extent table lacks its header");
	n = segment_get_u32(bytes + 4);
	if (n == 0 || n > SEGMENT_EXTENTS_MAX || packed_length < 8 + 8 * n)
		return ferry_error_set(FERRY_ERR_INVALID, "extent table of %zu entries is invalid",
				       n);
	for (size_t i = 0; i < n; i++) {
		extents[i].offset = segment_get_u32(bytes + 8 + 8 * i);
		extents[i].length = segment_get_u32(bytes + 12 + 8 * i);
		/* Sorted, disjoint, non-empty, inside the segment. */
		if (extents[i].length == 0 || extents[i].offset < end ||
		    (uint64_t)extents[i].offset + extents[i].length > segment_length)
			return ferry_error_set(FERRY_ERR_INVALID,
					       "extent %zu (%u+%u) is out of order or outside the "
					       "segment of %zu bytes",
					       i, extents[i].offset, extents[i].length,
					       segment_length);
		end = (uint64_t)extents[i].offset + extents[i].length;
		total += extents[i].length;
	}
	if (packed_length != 8 + 8 * n + total)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "extent data is %zu bytes, the table names %llu",
				       packed_length - 8 - 8 * n, (unsigned long long)total);
	*count = n;
	*data = bytes + 8 + 8 * n;
	return 0;
}

int
segment_decode_bounded(struct segment_codec *codec, const void *body, size_t body_length,
		       void *plain, size_t capacity, size_t *plain_length)
{
	unsigned long long declared;

	if (ZSTD_isError(ZSTD_findFrameCompressedSize(body, body_length)))
		return ferry_error_set(FERRY_ERR_INVALID, "segment body is not a zstd frame");
	declared = ZSTD_getFrameContentSize(body, body_length);
	if (declared == ZSTD_CONTENTSIZE_UNKNOWN || declared == ZSTD_CONTENTSIZE_ERROR ||
	    declared > capacity)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "zstd frame declares %llu bytes, more than %zu allowed",
				       declared, capacity);
	*plain_length = (size_t)declared;
	return segment_decode(codec, body, body_length, plain, (size_t)declared);
}

int
segment_decode(struct segment_codec *codec, const void *body, size_t body_length, void *plain,
	       size_t plain_length)
{
	unsigned long long declared;
	size_t frame_length, result;

	frame_length = ZSTD_findFrameCompressedSize(body, body_length);
	if (ZSTD_isError(frame_length) || frame_length != body_length)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "segment body is not exactly one zstd frame (%zu bytes)",
				       body_length);
	declared = ZSTD_getFrameContentSize(body, body_length);
	if (declared != plain_length)
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"zstd frame declares %llu plain bytes, segment length is %zu", declared,
			plain_length);
	result = ZSTD_decompressDCtx(codec->decompress, plain, plain_length, body, body_length);
	if (ZSTD_isError(result) || result != plain_length)
		return ferry_error_set(FERRY_ERR_INVALID, "zstd frame does not decode: %s",
				       ZSTD_isError(result) ? ZSTD_getErrorName(result) : "short");
	return 0;
}
