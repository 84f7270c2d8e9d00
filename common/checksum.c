/* XXH3-128 wrappers. The canonical form is used everywhere bytes are stored or sent,
 * so the catalog's blobs and the wire agree on any host byte order. */
#include "common/checksum.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

void
checksum_compute(const void *data, size_t length, struct checksum *out)
{
	XXH128_hash_t hash = XXH3_128bits(data, length);
	XXH128_canonical_t canonical;

	XXH128_canonicalFromHash(&canonical, hash);
	memcpy(out->bytes, canonical.digest, CHECKSUM_BYTES);
}

void
checksum_of_zeroes(size_t length, struct checksum *out)
{
	static const uint8_t zeroes[65536];
	XXH3_state_t *state = XXH3_createState();
	XXH128_canonical_t canonical;

	if (state == NULL)
		abort();
	XXH3_128bits_reset(state);
	while (length > 0) {
		size_t step = length < sizeof(zeroes) ? length : sizeof(zeroes);

		XXH3_128bits_update(state, zeroes, step);
		length -= step;
	}
	XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(state));
	XXH3_freeState(state);
	memcpy(out->bytes, canonical.digest, CHECKSUM_BYTES);
}

int
checksum_is_unset(const struct checksum *sum)
{
	for (int i = 0; i < CHECKSUM_BYTES; i++)
		if (sum->bytes[i] != 0)
			return 0;
	return 1;
}

void
checksum_to_hex(const struct checksum *sum, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < CHECKSUM_BYTES; i++) {
		hex[2 * i] = digits[sum->bytes[i] >> 4];
		hex[2 * i + 1] = digits[sum->bytes[i] & 15];
	}
	hex[CHECKSUM_HEX_LENGTH] = '\0';
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
checksum_from_hex(const char *hex, struct checksum *out)
{
	if (hex == NULL || strlen(hex) != CHECKSUM_HEX_LENGTH)
		return FERRY_ERR_INVALID;
	for (int i = 0; i < CHECKSUM_BYTES; i++) {
		int high = hex_value(hex[2 * i]), low = hex_value(hex[2 * i + 1]);

		if (high < 0 || low < 0)
			return FERRY_ERR_INVALID;
		out->bytes[i] = (uint8_t)(high << 4 | low);
	}
	return 0;
}

void
checksum_digest_ranges(const uint8_t *sums, const struct range_set *ranges, char *out)
{
	XXH3_state_t *state = XXH3_createState();
	XXH128_canonical_t canonical;
	char hex[CHECKSUM_HEX_LENGTH + 1];
	struct checksum digest;

	if (state == NULL)
		abort();
	XXH3_128bits_reset(state);
	for (size_t i = 0; i < ranges->count; i++)
		XXH3_128bits_update(state, sums + ranges->ranges[i].first * CHECKSUM_BYTES,
				    (ranges->ranges[i].last - ranges->ranges[i].first + 1) *
					    CHECKSUM_BYTES);
	XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(state));
	XXH3_freeState(state);
	memcpy(digest.bytes, canonical.digest, CHECKSUM_BYTES);
	checksum_to_hex(&digest, hex);
	snprintf(out, DIGEST_STRING_SIZE, "%s%s", DIGEST_PREFIX, hex);
}

void
checksum_digest(const uint8_t *sums, uint64_t count, char *out)
{
	struct checksum digest;
	char hex[CHECKSUM_HEX_LENGTH + 1];

	checksum_compute(sums, (size_t)count * CHECKSUM_BYTES, &digest);
	checksum_to_hex(&digest, hex);
	snprintf(out, DIGEST_STRING_SIZE, "%s%s", DIGEST_PREFIX, hex);
}
