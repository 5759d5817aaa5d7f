/* tests/test_supervisor.c: placeholder, being written. */
int main(void) { return 77; }
