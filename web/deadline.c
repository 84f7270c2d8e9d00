/* The header deadline: a connection must finish its TLS handshake and a request's headers within
 * WEB_HEADER_DEADLINE_S of opening (or of its previous request ending), however slowly it
 * trickles bytes. MHD's own timeout is an idle one, which a byte a second never trips. */
#include "web/web.h"
#include "common/log.h"
#include "common/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct web_deadline_slot {
	bool used;
	bool in_request; /* headers complete: the body's pace is the idle timeout's business */
	int fd;
	int64_t since_ms;
};

struct web_deadline {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool stopping;
	struct web_deadline_slot slots[WEB_CONNECTIONS_MAX];
};

/* Runs once a second: a connection past its deadline has its socket shut down, which wakes its
 * thread in MHD with an end of stream; MHD then closes it as it would a vanished client. The
 * slot leaves the table (under the lock) before MHD closes the descriptor, so the descriptor
 * shut down here is always still this connection's. */
static void *
web_deadline_run(void *argument)
{
	struct web_deadline *deadline = argument;

	pthread_mutex_lock(&deadline->lock);
	while (!deadline->stopping) {
		struct timespec until;
		int64_t now = util_now_ms();
		unsigned cut = 0;

		for (size_t i = 0; i < WEB_CONNECTIONS_MAX; i++) {
			struct web_deadline_slot *slot = &deadline->slots[i];

			if (slot->used && !slot->in_request && slot->fd >= 0 &&
			    now - slot->since_ms > WEB_HEADER_DEADLINE_S * 1000) {
				shutdown(slot->fd, SHUT_RDWR);
				slot->fd = -1;
				cut++;
			}
		}
		if (cut > 0)
			log_warn("closed %u connection(s) that took over %d s for a handshake and "
				 "headers",
				 cut, WEB_HEADER_DEADLINE_S);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&deadline->wake, &deadline->lock, &until);
	}
	pthread_mutex_unlock(&deadline->lock);
	return NULL;
}

struct web_deadline *
web_deadline_start(void)
{
	struct web_deadline *deadline = calloc(1, sizeof(*deadline));

	if (deadline == NULL)
		return NULL;
	pthread_mutex_init(&deadline->lock, NULL);
	pthread_cond_init(&deadline->wake, NULL);
	if (pthread_create(&deadline->thread, NULL, web_deadline_run, deadline) != 0) {
		pthread_cond_destroy(&deadline->wake);
		pthread_mutex_destroy(&deadline->lock);
		free(deadline);
		return NULL;
	}
	return deadline;
}

void
web_deadline_stop(struct web_deadline *deadline)
{
	if (deadline == NULL)
		return;
	pthread_mutex_lock(&deadline->lock);
	deadline->stopping = true;
	pthread_cond_signal(&deadline->wake);
	pthread_mutex_unlock(&deadline->lock);
	pthread_join(deadline->thread, NULL);
	pthread_cond_destroy(&deadline->wake);
	pthread_mutex_destroy(&deadline->lock);
	free(deadline);
}

/* MHD's connection notification: a slot per open connection, kept in its socket context. */
void
web_deadline_notify(void *context, struct MHD_Connection *connection, void **socket_context,
		    enum MHD_ConnectionNotificationCode code)
{
	struct web_deadline *deadline = context;
	struct web_deadline_slot *slot = *socket_context;

	pthread_mutex_lock(&deadline->lock);
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *info =
			MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);

		for (size_t i = 0; i < WEB_CONNECTIONS_MAX && info; i++)
			if (!deadline->slots[i].used) {
				slot = &deadline->slots[i];
				slot->used = true;
				slot->in_request = false;
				slot->fd = info->connect_fd;
				slot->since_ms = util_now_ms();
				*socket_context = slot;
				break;
			}
	} else if (slot) {
		slot->used = false;
		slot->fd = -1;
		*socket_context = NULL;
	}
	pthread_mutex_unlock(&deadline->lock);
}

static struct web_deadline_slot *
web_deadline_slot_of(struct MHD_Connection *connection)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info ? info->socket_context : NULL;
}

void
web_deadline_request_begun(struct web_deadline *deadline, struct MHD_Connection *connection)
{
	struct web_deadline_slot *slot = web_deadline_slot_of(connection);

	if (slot == NULL)
		return;
	pthread_mutex_lock(&deadline->lock);
	slot->in_request = true;
	pthread_mutex_unlock(&deadline->lock);
}

/* A kept-alive connection's next request gets a deadline of its own, from now. */
void
web_deadline_request_ended(struct web_deadline *deadline, struct MHD_Connection *connection)
{
	struct web_deadline_slot *slot = web_deadline_slot_of(connection);

	if (slot == NULL)
		return;
	pthread_mutex_lock(&deadline->lock);
	slot->in_request = false;
	slot->since_ms = util_now_ms();
	pthread_mutex_unlock(&deadline->lock);
}
