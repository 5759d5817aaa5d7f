/* tests/test_ddp.c: placeholder, being written. */
int main(void) { return 77; }
