/* ferryd: the per-site appliance daemon. Parses options, opens the site's catalog, loads TLS,
 * serves /v1 in the foreground until SIGTERM or SIGINT, then stops cleanly. */
#include "catalog/catalog.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "replicator/repl.h"
#include "web/web.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
usage(FILE *out)
{
	fprintf(out, "usage: ferryd --state-dir DIR --listen HOST:PORT --token-file FILE\n"
		     "              [--tls-cert FILE --tls-key FILE] [--verbose]\n"
		     "\n"
		     "Runs one ferry site in the foreground, logging to stderr; SIGTERM stops it.\n"
		     "DIR/catalog.db is the site's catalog, DIR/volumes/NAME each received file "
		     "volume,\n"
		     "DIR/tls/ the self-signed TLS pair made on first start when no --tls-cert is "
		     "given.\n");
}

int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"state-dir", required_argument, NULL, 's'},
		{"listen", required_argument, NULL, 'l'},
		{"token-file", required_argument, NULL, 't'},
		{"tls-cert", required_argument, NULL, 'c'},
		{"tls-key", required_argument, NULL, 'k'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *state_dir = NULL, *listen = NULL, *token_file = NULL;
	const char *certificate_path = NULL, *key_path = NULL;
	char *token = NULL, *certificate_pem = NULL, *key_pem = NULL;
	char catalog_path[4096], url_path[4096], url[512], state_dir_absolute[PATH_MAX];
	struct catalog *catalog = NULL;
	struct repl_receiver *receiver = NULL;
	struct web_server *server = NULL;
	struct stat token_info;
	sigset_t signals;
	int option, received = 0, status = 1;

	while ((option = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (option) {
		case 's': state_dir = optarg; break;
		case 'l': listen = optarg; break;
		case 't': token_file = optarg; break;
		case 'c': certificate_path = optarg; break;
		case 'k': key_path = optarg; break;
		case 'v': log_set_level(LOG_LEVEL_DEBUG); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || state_dir == NULL || listen == NULL || token_file == NULL) {
		fprintf(stderr, "ferryd: --state-dir, --listen and --token-file are required\n");
		usage(stderr);
		return 2;
	}
	if (strlen(state_dir) > 900) {
		fprintf(stderr, "ferryd: --state-dir path is too long (900 characters at most)\n");
		return 2;
	}
	/* Block the stop signals before any thread starts, so that only sigwait() sees them. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (util_read_token_file(token_file, &token) < 0 || util_mkdir_p(state_dir, 0700) < 0)
		goto out;
	if (stat(token_file, &token_info) == 0 && (token_info.st_mode & 077))
		log_warn("token file %s is readable by other users (mode %03o); chmod 600 it",
			 token_file, (unsigned)(token_info.st_mode & 0777));
	/* Absolute from here on: paths recorded in the catalog must not depend on the cwd. */
	if (realpath(state_dir, state_dir_absolute) == NULL) {
		ferry_error_set(FERRY_ERR_IO, "cannot resolve --state-dir %s: %s", state_dir,
				strerror(errno));
		goto out;
	}
	state_dir = state_dir_absolute;
	snprintf(catalog_path, sizeof(catalog_path), "%s/catalog.db", state_dir);
	if (catalog_open(catalog_path, CATALOG_SYNC_FULL, &catalog) < 0)
		goto out;
	receiver = repl_receiver_new(catalog, state_dir);
	if (receiver == NULL)
		goto out;
	if (web_tls_load(state_dir, certificate_path, key_path, &certificate_pem, &key_pem) < 0)
		goto out;
	server = web_server_start(&(struct web_server_options){
		.listen = listen,
		.certificate_pem = certificate_pem,
		.key_pem = key_pem,
		.token = token,
		.catalog = catalog,
		.receiver = receiver,
	});
	if (server == NULL)
		goto out;
	{
		const char *colon = strrchr(listen, ':');

		snprintf(url, sizeof(url), "https://%.*s:%d\n", (int)(colon - listen), listen,
			 web_server_port(server));
	}
	/* DIR/ferryd.url says where this daemon listens, and that it is ready. */
	snprintf(url_path, sizeof(url_path), "%s/ferryd.url", state_dir);
	if (util_write_file_atomic(url_path, url, strlen(url), 0644) < 0)
		goto out;
	url[strcspn(url, "\n")] = '\0';
	catalog_event_add(catalog, "info", "ferryd", "started, listening on %s", url);
	log_info("ferryd listening on %s, state in %s", url, state_dir);
	while (sigwait(&signals, &received) != 0)
		;
	log_info("ferryd stopping (%s)", strsignal(received));
	status = 0;
out:
	if (status != 0 && ferry_error_message()[0])
		log_error("%s", ferry_error_message());
	web_server_stop(server);
	if (server)
		unlink(url_path);
	if (catalog && status == 0)
		catalog_event_add(catalog, "info", "ferryd", "stopped");
	repl_receiver_free(receiver);
	catalog_close(catalog);
	free(token);
	free(certificate_pem);
	free(key_pem);
	return status;
}
