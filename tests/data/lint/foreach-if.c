/* expect: 2 */
int
sample_foreach(json_t *list)
{
	json_array_foreach(list, i, item) if (rc == 0) rc = use(item);
	json_array_foreach(list, i,
			   item) if (rc == 0) rc = use(item);
	json_array_foreach(list, i, item) {
		if (rc == 0)
			rc = use(item);
	}
	return rc;
}
