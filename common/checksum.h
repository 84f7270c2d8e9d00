/* Checksums of plain segment bytes (XXH3-128) and the whole-volume digest built from them.
 * Both sides of a transfer compute the digest the same way: XXH3-128 over the segments'
 * checksums in index order, each in canonical (big-endian) form. */
#ifndef FERRY_COMMON_CHECKSUM_H
#define FERRY_COMMON_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#include "common/range_set.h"

#define CHECKSUM_BYTES	    16
#define CHECKSUM_HEX_LENGTH 32
#define DIGEST_PREFIX	    "xxh3-128:"
#define DIGEST_STRING_SIZE  (sizeof(DIGEST_PREFIX) + CHECKSUM_HEX_LENGTH)

struct checksum {
	uint8_t bytes[CHECKSUM_BYTES]; /* canonical big-endian XXH128 */
};

void checksum_compute(const void *data, size_t length, struct checksum *out);
/* Checksum of `length` zero bytes, without the caller allocating them. */
void checksum_of_zeroes(size_t length, struct checksum *out);
int checksum_is_unset(const struct checksum *sum);
/* hex must hold CHECKSUM_HEX_LENGTH + 1 bytes. */
void checksum_to_hex(const struct checksum *sum, char *hex);
/* Returns 0, or FERRY_ERR_INVALID when hex is not 32 hex digits. */
int checksum_from_hex(const char *hex, struct checksum *out);

/* Digest over `count` consecutive checksums; out holds DIGEST_STRING_SIZE bytes. */
void checksum_digest(const uint8_t *sums, uint64_t count, char *out);
/* Digest over the checksums of the segments in ranges only, in index order: the digest of a
 * delta. With every segment in ranges it equals checksum_digest(). */
void checksum_digest_ranges(const uint8_t *sums, const struct range_set *ranges, char *out);

#endif
