/* A set of segment indexes kept as sorted, disjoint, non-adjacent inclusive ranges, so that a
 * 16 TiB volume copied mostly in order is a handful of ranges, never millions of entries.
 * Caller owns the set; range_set_free() releases what it holds (not the struct itself). */
#ifndef FERRY_COMMON_RANGE_SET_H
#define FERRY_COMMON_RANGE_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct range {
	uint64_t first;
	uint64_t last; /* inclusive */
};

struct range_set {
	struct range *ranges;
	size_t count;
	size_t capacity;
};

void range_set_init(struct range_set *set);
void range_set_free(struct range_set *set);
void range_set_clear(struct range_set *set);
/* Adds [first, last]; merges with overlapping or adjacent ranges. 0 or FERRY_ERR_NO_MEMORY. */
int range_set_add(struct range_set *set, uint64_t first, uint64_t last);
bool range_set_contains(const struct range_set *set, uint64_t index);
/* Number of indexes in the set. */
uint64_t range_set_size(const struct range_set *set);

#endif
