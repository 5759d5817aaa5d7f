/* tests/test_job_spec.c: placeholder, being written. */
int main(void) { return 77; }
