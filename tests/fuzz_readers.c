/* tests/fuzz_readers.c: placeholder, being written. */
int main(void) { return 77; }
