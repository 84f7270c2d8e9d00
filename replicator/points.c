/* Point dispatch: picks the point table of a volume's kind (struct repl_point_ops, backend.h)
 * from the location's scheme, as volume.c picks its backend, and checks what every kind would
 * check alike (a point number, a group name) before the kind sees the call. A kind without a
 * table is refused here with a message that names the volume, so that no caller needs to know
 * which kinds have points. "file:/path" and plain paths are files, as in volume.c. */
#include "replicator/backend.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const struct repl_backend_ops *const point_backends[] = {&repl_backend_file,
								&repl_backend_rbd};

/* The backend of location's scheme, or NULL. */
static const struct repl_backend_ops *
point_backend_of(const char *location)
{
	const char *colon = strchr(location, ':');
	const char *scheme = "file";
	size_t length = strlen(scheme);

	if (colon != NULL && location[0] != '/' && location[0] != '.') {
		scheme = location;
		length = (size_t)(colon - location);
	}
	for (size_t i = 0; i < sizeof(point_backends) / sizeof(point_backends[0]); i++)
		if (strlen(point_backends[i]->scheme) == length &&
		    strncmp(point_backends[i]->scheme, scheme, length) == 0)
			return point_backends[i];
	return NULL;
}

/* The point table for location, or a refusal that names the volume and says what could not be
 * done with it (doing: "roll it back", "list its points", ...). */
static int
point_ops_for(const char *location, const char *doing, const struct repl_point_ops **ops)
{
	const struct repl_backend_ops *backend;

	if (location == NULL || location[0] == '\0')
		return ferry_error_set(FERRY_ERR_INVALID,
				       "no volume named, so ferry cannot %s; points need an RBD "
				       "volume (rbd:POOL/IMAGE)",
				       doing);
	backend = point_backend_of(location);
	if (backend == NULL)
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"%s is of an unknown volume kind, so ferry cannot %s; points "
			"need an RBD volume (rbd:POOL/IMAGE)",
			location, doing);
	if (backend->points == NULL)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "%s has no points (a %s volume), so ferry cannot %s; points "
				       "need an RBD volume (rbd:POOL/IMAGE)",
				       location, backend->scheme, doing);
	*ops = backend->points;
	return 0;
}

static int
point_number_check(const char *location, int64_t point)
{
	if (point < 1)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "point %" PRId64 " of %s: points are numbered from 1", point,
				       location);
	return 0;
}

static int
point_group_check(const char *location, const char *group)
{
	if (group == NULL || group[0] == '\0' || strlen(group) > VOLUME_NAME_MAX)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "%s: give the name of its protection group (at most %d "
				       "characters)",
				       location, VOLUME_NAME_MAX);
	return 0;
}

bool
repl_point_supported(const char *location)
{
	const struct repl_backend_ops *backend =
		location && location[0] ? point_backend_of(location) : NULL;

	return backend != NULL && backend->points != NULL;
}

int
repl_point_list(const char *location, int64_t *points, size_t max, size_t *count,
		int64_t *newest_time)
{
	const struct repl_point_ops *ops = NULL;
	int rc;

	*count = 0;
	*newest_time = 0;
	rc = point_ops_for(location, "list its points", &ops);
	return rc < 0 ? rc : ops->list(location, points, max, count, newest_time);
}

int
repl_point_rollback(const char *location, int64_t point)
{
	const struct repl_point_ops *ops = NULL;
	int rc = point_ops_for(location, "roll it back", &ops);

	if (rc == 0)
		rc = point_number_check(location, point);
	return rc < 0 ? rc : ops->rollback(location, point);
}

int
repl_point_clone(const char *location, int64_t point, const char *clone_name)
{
	const struct repl_point_ops *ops = NULL;
	int rc = point_ops_for(location, "clone its point", &ops);

	if (rc == 0)
		rc = point_number_check(location, point);
	if (rc == 0 && (clone_name == NULL || clone_name[0] == '\0'))
		rc = ferry_error_set(FERRY_ERR_INVALID,
				     "%s: the clone of point %" PRId64 " needs a name", location,
				     point);
	return rc < 0 ? rc : ops->clone(location, point, clone_name);
}

int
repl_point_clone_remove(const char *location, int64_t point, const char *clone_name)
{
	const struct repl_point_ops *ops = NULL;
	int rc = point_ops_for(location, "remove its point's clone", &ops);

	if (rc == 0 && point < 0)
		rc = point_number_check(location, point);
	if (rc == 0 && (clone_name == NULL || clone_name[0] == '\0'))
		rc = ferry_error_set(FERRY_ERR_INVALID, "%s: name the clone to remove", location);
	return rc < 0 ? rc : ops->clone_remove(location, point, clone_name);
}

int
repl_point_restore(const char *location, const char *group, int64_t point)
{
	const struct repl_point_ops *ops = NULL;
	int rc = point_ops_for(location, "restore its point", &ops);

	if (rc == 0)
		rc = point_number_check(location, point);
	if (rc == 0)
		rc = point_group_check(location, group);
	return rc < 0 ? rc : ops->restore(location, group, point);
}

int
repl_point_reset(const char *location, int64_t point)
{
	const struct repl_point_ops *ops = NULL;
	int rc = point_ops_for(location, "reset its points", &ops);

	if (rc == 0)
		rc = point_number_check(location, point);
	return rc < 0 ? rc : ops->reset(location, point);
}

int
repl_group_place(const char *location, char *place, size_t size)
{
	const struct repl_point_ops *ops = NULL;
	int rc = point_ops_for(location, "place its group", &ops);

	return rc < 0 ? rc : ops->group_place(location, place, size);
}

int
repl_group_join(const char *location, const char *group, const char *member)
{
	const struct repl_point_ops *ops = NULL;
	int rc = point_ops_for(location, "put it in a group", &ops);

	if (rc == 0)
		rc = point_group_check(location, group);
	/* A member of another kind could never share a group point with this one. */
	if (rc == 0 && member != NULL && point_backend_of(member) != point_backend_of(location))
		rc = ferry_error_set(FERRY_ERR_INVALID,
				     "group %s holds %s, of another kind than %s: one group point "
				     "covers volumes of one kind; protect it in another group",
				     group, member, location);
	return rc < 0 ? rc : ops->group_join(location, group, member);
}

int
repl_group_leave(const char *location, const char *group)
{
	const struct repl_point_ops *ops = NULL;
	int rc = point_ops_for(location, "take it out of its group", &ops);

	if (rc == 0)
		rc = point_group_check(location, group);
	return rc < 0 ? rc : ops->group_leave(location, group);
}

int
repl_group_point_exists(const char *location, const char *group, int64_t point)
{
	const struct repl_point_ops *ops = NULL;
	int rc = point_ops_for(location, "find its group's point", &ops);

	if (rc == 0)
		rc = point_number_check(location, point);
	if (rc == 0)
		rc = point_group_check(location, group);
	return rc < 0 ? rc : ops->group_point_exists(location, group, point);
}

int
repl_group_point_take(const char *location, const char *group, int64_t point, bool *taken)
{
	const struct repl_point_ops *ops = NULL;
	int rc = point_ops_for(location, "take its group's point", &ops);

	*taken = false;
	if (rc == 0)
		rc = point_number_check(location, point);
	if (rc == 0)
		rc = point_group_check(location, group);
	return rc < 0 ? rc : ops->group_point_take(location, group, point, taken);
}

int
repl_group_point_remove(const char *location, const char *group, int64_t point)
{
	const struct repl_point_ops *ops = NULL;
	int rc = point_ops_for(location, "remove its group's point", &ops);

	if (rc == 0)
		rc = point_number_check(location, point);
	if (rc == 0)
		rc = point_group_check(location, group);
	return rc < 0 ? rc : ops->group_point_remove(location, group, point);
}

int
repl_group_prune(const char *location, const char *group, const struct repl_retention *retention)
{
	const struct repl_point_ops *ops = NULL;
	int rc = point_ops_for(location, "prune its group's points", &ops);

	if (rc == 0)
		rc = point_group_check(location, group);
	return rc < 0 ? rc : ops->group_prune(location, group, retention);
}

int
repl_group_dissolve(const char *location, const char *group)
{
	const struct repl_point_ops *ops = NULL;
	int rc = point_ops_for(location, "dissolve its group", &ops);

	if (rc == 0)
		rc = point_group_check(location, group);
	return rc < 0 ? rc : ops->group_dissolve(location, group);
}
