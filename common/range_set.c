/* Sorted range list with merge-on-insert. Lookups are binary searches; inserts move at most
 * the tail of the array, which stays short because transfers complete mostly in order. */
#include "common/range_set.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

void
range_set_init(struct range_set *set)
{
	memset(set, 0, sizeof(*set));
}

void
range_set_free(struct range_set *set)
{
	free(set->ranges);
	range_set_init(set);
}

void
range_set_clear(struct range_set *set)
{
	set->count = 0;
}

/* Index of the first range whose last >= index (may be count). */
static size_t
range_set_lower_bound(const struct range_set *set, uint64_t index)
{
	size_t low = 0, high = set->count;

	while (low < high) {
		size_t middle = low + (high - low) / 2;

		if (set->ranges[middle].last < index)
			low = middle + 1;
		else
			high = middle;
	}
	return low;
}

int
range_set_add(struct range_set *set, uint64_t first, uint64_t last)
{
	size_t start, end;

	if (first > last)
		return FERRY_ERR_INVALID;
	/* First range that overlaps or touches [first, last] on the left. */
	start = range_set_lower_bound(set, first == 0 ? 0 : first - 1);
	end = start;
	while (end < set->count && (last == UINT64_MAX || set->ranges[end].first <= last + 1)) {
		if (set->ranges[end].first < first)
			first = set->ranges[end].first;
		if (set->ranges[end].last > last)
			last = set->ranges[end].last;
		end++;
	}
	if (end == start) {
		if (set->count == set->capacity) {
			size_t capacity = set->capacity ? set->capacity * 2 : 8;
			struct range *grown = realloc(set->ranges, capacity * sizeof(*grown));

			if (grown == NULL)
				return ferry_error_no_memory();
			set->ranges = grown;
			set->capacity = capacity;
		}
		memmove(&set->ranges[start + 1], &set->ranges[start],
			(set->count - start) * sizeof(*set->ranges));
		set->count++;
	} else if (end - start > 1) {
		memmove(&set->ranges[start + 1], &set->ranges[end],
			(set->count - end) * sizeof(*set->ranges));
		set->count -= end - start - 1;
	}
	set->ranges[start].first = first;
	set->ranges[start].last = last;
	return 0;
}

bool
range_set_contains(const struct range_set *set, uint64_t index)
{
	size_t at = range_set_lower_bound(set, index);

	return at < set->count && set->ranges[at].first <= index;
}

uint64_t
range_set_size(const struct range_set *set)
{
	uint64_t total = 0;

	for (size_t i = 0; i < set->count; i++)
		total += set->ranges[i].last - set->ranges[i].first + 1;
	return total;
}
