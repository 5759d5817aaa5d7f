/* tests/test_dckpt.c: placeholder, being written. */
int main(void) { return 77; }
