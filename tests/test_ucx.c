/* tests/test_ucx.c: placeholder, being written. */
int main(void) { return 77; }
