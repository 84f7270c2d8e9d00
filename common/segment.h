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

/* zero: no body, the segment is all zeroes. zstd: one frame of the whole segment. extents: one
 * frame of an extent table and the extents' bytes, applied over what the receiver holds (a
 * delta's few changed blocks inside a segment); the checksum is still the whole segment's. */
enum segment_encoding { SEGMENT_ENCODING_ZERO, SEGMENT_ENCODING_ZSTD, SEGMENT_ENCODING_EXTENTS };

/* Extents of a segment: at most SEGMENT_EXTENTS_MAX, sorted, not overlapping. */
#define SEGMENT_EXTENTS_MAX 4096u
struct segment_extent {
	uint32_t offset; /* within the segment */
	uint32_t length;
};
/* Size of the packed form of count extents holding data_length bytes in all. */
size_t segment_extents_packed_size(size_t count, size_t data_length);
/* Packs the extents of plain (a whole segment) into out: "FXT1", count, the table (all
 * little-endian u32), then the extents' bytes. Returns the packed length. */
size_t segment_extents_pack(const void *plain, const struct segment_extent *extents, size_t count,
			    void *out);
/* Reads a packed form made for a segment of segment_length bytes; checks every bound. Sets
 * extents (room for SEGMENT_EXTENTS_MAX), *count and *data. FERRY_ERR_INVALID when malformed. */
int segment_extents_unpack(const void *packed, size_t packed_length, size_t segment_length,
			   struct segment_extent *extents, size_t *count, const uint8_t **data);

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
/* Decodes one zstd frame whose declared size is at most capacity; sets *plain_length. */
int segment_decode_bounded(struct segment_codec *codec, const void *body, size_t body_length,
			   void *plain, size_t capacity, size_t *plain_length);

#endif
