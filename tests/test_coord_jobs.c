/* tests/test_coord_jobs.c: placeholder, being written. */
int main(void) { return 77; }
