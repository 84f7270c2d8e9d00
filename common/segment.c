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
	return encoding == SEGMENT_ENCODING_ZERO ? "zero" : "zstd";
}

int
segment_encoding_parse(const char *name, enum segment_encoding *out)
{
	if (name && strcmp(name, "zero") == 0)
		*out = SEGMENT_ENCODING_ZERO;
	else if (name && strcmp(name, "zstd") == 0)
		*out = SEGMENT_ENCODING_ZSTD;
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
