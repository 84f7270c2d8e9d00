/* The receiver's per-thread decoding scratch (a codec and buffers kept by each connection's
 * thread), apart from the receiver's state: it holds nothing but memory. */
#include "replicator/backend.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_key_t receiver_scratch_key;
static pthread_once_t receiver_scratch_once = PTHREAD_ONCE_INIT;

static void
receiver_scratch_free(void *pointer)
{
	struct receiver_scratch *scratch = pointer;

	segment_codec_free(scratch->codec);
	free(scratch->plain);
	free(scratch->packed);
	free(scratch);
}

static void
receiver_scratch_init(void)
{
	pthread_key_create(&receiver_scratch_key, receiver_scratch_free);
}

/* This thread's scratch with room for `length` plain bytes and `packed_length` bytes of packed
 * extents, or NULL when memory runs out. */
struct receiver_scratch *
receiver_scratch_get(size_t length, size_t packed_length)
{
	struct receiver_scratch *scratch;

	pthread_once(&receiver_scratch_once, receiver_scratch_init);
	scratch = pthread_getspecific(receiver_scratch_key);
	if (scratch == NULL) {
		scratch = calloc(1, sizeof(*scratch));
		if (scratch == NULL)
			return NULL;
		scratch->codec = segment_codec_new(0);
		if (scratch->codec == NULL || pthread_setspecific(receiver_scratch_key, scratch)) {
			receiver_scratch_free(scratch);
			return NULL;
		}
	}
	if (scratch->capacity < length) {
		char *grown = realloc(scratch->plain, length);

		if (grown == NULL)
			return NULL;
		scratch->plain = grown;
		scratch->capacity = length;
	}
	if (scratch->packed_capacity < packed_length) {
		uint8_t *grown = realloc(scratch->packed, packed_length);

		if (grown == NULL)
			return NULL;
		scratch->packed = grown;
		scratch->packed_capacity = packed_length;
	}
	return scratch;
}
