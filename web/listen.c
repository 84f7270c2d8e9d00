/* ferryd's listening socket: bound first of all, so that a busy or mistyped --listen is the
 * first and only error, before any TLS pair, catalog or state folder is made. */
#include "web/web.h"
#include "common/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int
web_resolve(const char *listen, struct sockaddr_storage *address, socklen_t *length)
{
	struct addrinfo hints = {0}, *found = NULL;
	char host[256];
	const char *colon = strrchr(listen, ':'), *start = listen;
	size_t host_length;
	int rc;

	if (colon == NULL || colon == listen || colon[1] == '\0')
		return ferry_error_set(FERRY_ERR_INVALID,
				       "--listen '%s' is not HOST:PORT (e.g. 0.0.0.0:7443, "
				       "[::]:7443)",
				       listen);
	host_length = (size_t)(colon - listen);
	if (listen[0] == '[' && colon[-1] == ']') {
		start++;
		host_length -= 2;
	}
	if (host_length >= sizeof(host))
		return ferry_error_set(FERRY_ERR_INVALID, "--listen %s: host too long", listen);
	memcpy(host, start, host_length);
	host[host_length] = '\0';
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, colon + 1, &hints, &found);
	if (rc != 0)
		return ferry_error_set(FERRY_ERR_INVALID, "--listen %s: %s", listen,
				       gai_strerror(rc));
	memcpy(address, found->ai_addr, found->ai_addrlen);
	*length = found->ai_addrlen;
	freeaddrinfo(found);
	return 0;
}

int
web_listen(const char *where, int *fd_out)
{
	struct sockaddr_storage address;
	socklen_t length = 0;
	int fd = -1, on = 1, rc;

	*fd_out = -1;
	rc = web_resolve(where, &address, &length);
	if (rc < 0)
		return rc;
	fd = socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ferry_error_set(FERRY_ERR_IO, "--listen %s: cannot make a socket: %s", where,
				       strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&address, length) < 0) {
		int error = errno;

		close(fd);
		return ferry_error_set(
			FERRY_ERR_IO, "cannot listen on %s: %s%s", where, strerror(error),
			error == EADDRINUSE
				? " (another ferryd, or another program, listens there: "
				  "stop it or choose another port)"
			: error == EADDRNOTAVAIL ? " (no interface of this host has that address)"
			: error == EACCES	 ? " (a port below 1024 needs privileges)"
						 : "");
	}
	if (listen(fd, 128) < 0) {
		int error = errno;

		close(fd);
		return ferry_error_set(FERRY_ERR_IO, "cannot listen on %s: %s", where,
				       strerror(error));
	}
	*fd_out = fd;
	return 0;
}

int
web_listen_port(int fd)
{
	struct sockaddr_storage address;
	socklen_t length = sizeof(address);

	if (getsockname(fd, (struct sockaddr *)&address, &length) < 0)
		return -1;
	if (address.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&address)->sin6_port);
	return ntohs(((struct sockaddr_in *)&address)->sin_port);
}
