/* One error vocabulary for the whole project.
 * Functions return 0 or one of these negative codes; the human message is recorded once, where
 * the failure is detected, with ferry_error_set(), and read back by whoever reports it
 * (the CLI prints it, the web layer puts it in the JSON error body). Messages are per thread. */
#ifndef FERRY_COMMON_ERROR_H
#define FERRY_COMMON_ERROR_H

enum ferry_error {
	FERRY_OK = 0,
	FERRY_ERR_INTERNAL = -1,     /* a bug or an unexpected library failure */
	FERRY_ERR_INVALID = -2,	     /* malformed input: bad request, bad option */
	FERRY_ERR_UNAUTHORIZED = -3, /* missing or wrong token */
	FERRY_ERR_NOT_FOUND = -4,    /* unknown volume, transfer or route */
	FERRY_ERR_CONFLICT = -5,     /* state forbids it: source changed, stale transfer */
	FERRY_ERR_CHECKSUM = -6,     /* bytes do not match their checksum or digest */
	FERRY_ERR_NO_SPACE = -7,     /* the disk holding the data is full */
	FERRY_ERR_IO = -8,	     /* a read, write or flush failed */
	FERRY_ERR_TOO_LARGE = -9,    /* a body or header above its ceiling */
	FERRY_ERR_NETWORK = -10,     /* the peer could not be reached or the link broke */
	FERRY_ERR_TLS = -11,	     /* certificate not trusted or TLS set-up failed */
	FERRY_ERR_NO_MEMORY = -12,
	FERRY_ERR_REMOTE = -13,	   /* the peer answered with an error; the message is its message */
	FERRY_ERR_METHOD = -14,	   /* a known path asked with a method it does not take */
	FERRY_ERR_FORBIDDEN = -15, /* a valid token whose role or ownership does not allow it */
	/* a push, commit or prune from a site at a lower generation of its group than this one's:
	 * the other site promoted the replicas, and two sites wrote (HTTP 409, "split_brain") */
	FERRY_ERR_SPLIT_BRAIN = -16,
};

/* Records a printf-style message for the calling thread and returns code, so that
 * `return ferry_error_set(FERRY_ERR_IO, "write %s: %s", path, strerror(errno));` reads well. */
int ferry_error_set(int code, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Out of memory, reported where it happened (the function's name) with what to do: use it instead
 * of a bare FERRY_ERR_NO_MEMORY, which would leave an older message as the current one. */
#define ferry_error_no_memory()                                                                    \
	ferry_error_set(FERRY_ERR_NO_MEMORY,                                                       \
			"out of memory in %s; free memory on this host and try again", __func__)

/* The last message recorded on this thread ("" when none). Valid until the next set. */
const char *ferry_error_message(void);
int ferry_error_last_code(void);
void ferry_error_clear(void);

/* Stable snake_case name of a code, used as "code" in API error bodies. */
const char *ferry_error_name(int code);
/* Inverse of ferry_error_name(); FERRY_ERR_REMOTE for unknown names. */
int ferry_error_from_name(const char *name);

#endif
