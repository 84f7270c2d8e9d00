/* The point a failover brings each VM up from, as pure functions: point sets in, choices out; no
 * Ceph, no run, no catalog. activate.c reads the sets from the replicas and records the choice;
 * tests/unit/test_point_choice.c drives these from the case files in tests/data/point-choice/.
 *
 * Invariants:
 *   1. Every VM comes up with all its disks at one point (a point every one of its disks holds).
 *   2. With no point asked for, the point chosen for the group is the one most VMs hold, the newer
 *      on a tie; when one is common to all, that is the newest common point.
 *   3. A VM that does not hold the group's point comes up from its own newest point, and is
 *      marked as not sharing it (the run says so); a point asked for must be held by every VM. */
#include "cutover/internal.h"

bool
cutover_point_held(const int64_t *points, size_t count, int64_t point)
{
	for (size_t k = 0; k < count; k++)
		if (points[k] == point)
			return true;
	return false;
}

size_t
cutover_point_intersect(int64_t *common, size_t common_count, const int64_t *points, size_t count)
{
	size_t kept = 0;

	for (size_t c = 0; c < common_count; c++)
		if (cutover_point_held(points, count, common[c]))
			common[kept++] = common[c];
	return kept;
}

int
cutover_point_choose(const struct cutover_point_set *sets, size_t vm_count, int64_t wanted,
		     struct cutover_point_choice *choices, int64_t *group_point, size_t *missing)
{
	size_t best_count = 0;
	int64_t best = 0;

	*group_point = 0;
	*missing = vm_count;
	if (wanted != 0) {
		for (size_t i = 0; i < vm_count; i++)
			if (!cutover_point_held(sets[i].points, sets[i].count, wanted)) {
				*missing = i;
				return FERRY_ERR_NOT_FOUND;
			}
		best = wanted;
	}
	for (size_t i = 0; wanted == 0 && i < vm_count; i++)
		for (size_t k = 0; k < sets[i].count; k++) {
			int64_t candidate = sets[i].points[k];
			size_t holders = 0;

			for (size_t other = 0; other < vm_count; other++)
				holders += cutover_point_held(sets[other].points, sets[other].count,
							      candidate);
			if (holders > best_count || (holders == best_count && candidate > best)) {
				best_count = holders;
				best = candidate;
			}
		}
	for (size_t i = 0; i < vm_count; i++) {
		choices[i].shares = cutover_point_held(sets[i].points, sets[i].count, best);
		choices[i].point = best;
		if (choices[i].shares)
			continue;
		choices[i].point = 0;
		for (size_t k = 0; k < sets[i].count; k++)
			if (sets[i].points[k] > choices[i].point)
				choices[i].point = sets[i].points[k];
		if (choices[i].point == 0) {
			*missing = i; /* no point at all: nothing to bring it up from */
			return FERRY_ERR_NOT_FOUND;
		}
	}
	*group_point = best;
	return 0;
}
