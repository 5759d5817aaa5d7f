/* tests/test_data.c: placeholder, being written. */
int main(void) { return 77; }
