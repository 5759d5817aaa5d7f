/* tests/test_comm.c: placeholder, being written. */
int main(void) { return 77; }
