/* tests/test_nn_reference.c: placeholder, being written. */
int main(void) { return 77; }
