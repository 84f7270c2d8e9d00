/* expect: 3 */
int
sample_numbers(const char *text)
{
	int a = atoi(text);
	long b = strtol(text, NULL, 10);
	unsigned long long c = strtoull(text, NULL, 10);

	return util_parse_int64(text, 0, 9, NULL) + a + (int)b + (int)c;
}
