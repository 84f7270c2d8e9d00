/* expect: 0 */
/* Follows every rule: one label, a message for no memory, the one number parser, a mapping line
 * marked as such, and strings or comments that only mention the forbidden names (atoi). */
int
sample_clean(const char *text, int64_t *out)
{
	int rc = util_parse_int64(text, 0, 9, out);

	if (rc < 0)
		goto out;
	if (buffer == NULL)
		rc = ferry_error_no_memory();
	code = FERRY_ERR_NO_MEMORY; /* lint: maps codes */
	log_info("no atoi( here, nor return -EINVAL;");
out:
	return rc;
}
