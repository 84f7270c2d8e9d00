/* expect: 2 */
int
sample_raw_errno(void)
{
	rc = -ENOENT;
	return -EINVAL;
}
