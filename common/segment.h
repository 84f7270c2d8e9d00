/* The segment codec: how one segment of plain bytes travels. A segment is either a zero record
 * (no body: the receiver keeps the range sparse) or one zstd frame of the plain bytes. The
 * checksum always covers the plain bytes, so it is checked after decoding, before writing. */
#ifndef FERRY_COMMON_SEGMENT_H
#define FERRY_COMMON_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#define SEGMENT_SIZE_DEFAULT (4u << 20)
#define SEGMENT_SIZE_MIN     4096u
#define SEGMENT_SIZE_MAX     (64u << 20)
/* Granularity of sparse writes on the receiver: zero blocks inside a data segment become holes. */
#define SEGMENT_SPARSE_BLOCK 4096u

enum segment_encoding { SEGMENT_ENCODING_ZERO, SEGMENT_ENCODING_ZSTD };

const char *segment_encoding_name(enum segment_encoding encoding);
/* Returns 0 and sets *out, or FERRY_ERR_INVALID for an unknown name. */
int segment_encoding_parse(const char *name, enum segment_encoding *out);

int segment_is_zero(const void *data, size_t length);

/* Worst-case encoded size of `length` plain bytes: the ceiling a receiver puts on a body. */
size_t segment_encoded_bound(size_t length);

struct segment_codec; /* per-thread compression and decompression contexts */

struct segment_codec *segment_codec_new(int zstd_level);
void segment_codec_free(struct segment_codec *codec);

/* Compresses plain[0..length) into out (capacity out_capacity >= segment_encoded_bound(length)).
 * Returns 0 and the encoded length in *out_length, or a negative error. */
int segment_encode(struct segment_codec *codec, const void *plain, size_t length, void *out,
		   size_t out_capacity, size_t *out_length);

/* Decodes one zstd frame that must expand to exactly plain_length bytes into plain.
 * Returns FERRY_ERR_INVALID (with a message) for a bad frame or a wrong length. */
int segment_decode(struct segment_codec *codec, const void *body, size_t body_length, void *plain,
		   size_t plain_length);

#endif
