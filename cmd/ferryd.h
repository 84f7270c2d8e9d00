/* ferryd's settings, shared by the daemon (cmd/ferryd.c) and its configuration check
 * (cmd/ferryd_check.c). */
#ifndef FERRY_CMD_FERRYD_H
#define FERRY_CMD_FERRYD_H

#include <stdbool.h>
#include <stdint.h>

/* Every setting of ferryd; NULL until a flag or the configuration file gives it. */
struct ferryd_settings {
	char *state_dir;
	char *listen;
	char *token_file;
	char *certificate_path;
	char *key_path;
	char *ceph_conf;
	char *ceph_id;
	char *replica_pool;
	char *ceph_op_timeout;
	int64_t ceph_op_timeout_s; /* ceph_op_timeout, checked; 0 when not given */
	char *vm_refresh;
	int64_t vm_refresh_s; /* vm_refresh, checked */
	char *config_path;
	char *log_level;
	bool check_config;
	/* Lists. --libvirt NAME=URI from flags [0], then from the file [1] (a name the flags give
	 * is not taken from the file); folders and SANs of both together, the SANs NULL-ended. */
	char *libvirt[2][64];
	int libvirt_count[2];
	char *guest_dirs[8];
	int guest_dir_count;
	char *tls_sans[17];
	int tls_san_count;
	uint32_t file_keys_seen; /* the single-valued keys the configuration file gave, by index */
};

/* ferryd --check-config: checks everything the daemon would use, prints each problem on a line
 * of stderr and a summary on stdout. earlier_problems: those found before (the allow-lists
 * refused), counted with the rest so that "configuration OK" is never printed over them.
 * Returns 0 when there is none, else 2. */
int ferryd_check_config(const struct ferryd_settings *settings, int earlier_problems);

#endif
