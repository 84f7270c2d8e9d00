/* expect: 2 */
int
sample_no_memory(void)
{
	char *buffer = malloc(16);

	if (buffer == NULL)
		return FERRY_ERR_NO_MEMORY;
	rc = buffer ? 0 : FERRY_ERR_NO_MEMORY;
	return ferry_error_no_memory();
}
