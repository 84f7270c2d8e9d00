/* expect: 1 */
int
sample_labels(void)
{
	if (a)
		goto fail;
	if (b)
		goto out;
fail:
	cleanup();
out:
	return rc;
}
