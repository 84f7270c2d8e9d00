/* The room a receiver leaves in its state folder: volumes kept there share the filesystem with
 * the catalog, which must always be able to record what happens. */
#include "replicator/backend.h"
#include "common/error.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/statvfs.h>

/* Volumes in the state folder share its filesystem with the catalog, whose every change (a
 * segment's record, a request's audit entry) needs room: writing a volume's data stops while
 * less than this would stay free, so that a full folder is met by a volume write, which says so
 * and keeps what was acknowledged, and not by the catalog, which then refuses all new work. */
#define RECEIVER_CATALOG_HEADROOM (16ull << 20)

/* FERRY_ERR_NO_SPACE when writing `bytes` into the volume at `location` would leave `folder`
 * less than RECEIVER_CATALOG_HEADROOM free (volumes elsewhere, in a pool or on a device, have
 * no such floor). A folder that cannot be measured is written to: the write itself reports. */
int
receiver_check_headroom(const char *folder, const char *location, uint64_t bytes)
{
	size_t folder_length = strlen(folder);
	struct statvfs info;
	uint64_t available;

	if (strncmp(location, folder, folder_length) != 0 || location[folder_length] != '/' ||
	    statvfs(folder, &info) < 0)
		return 0;
	available = (uint64_t)info.f_bavail * info.f_frsize;
	if (available >= bytes + RECEIVER_CATALOG_HEADROOM)
		return 0;
	return ferry_error_set(
		FERRY_ERR_NO_SPACE,
		"cannot write %s: %s (%" PRIu64 " KiB free, and ferryd keeps %llu MiB "
		"free there for its catalog)",
		location, strerror(ENOSPC), available >> 10, RECEIVER_CATALOG_HEADROOM >> 20);
}
