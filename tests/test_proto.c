/* tests/test_proto.c: placeholder, being written. */
int main(void) { return 77; }
