/* tests/test_nn_modules.c: placeholder, being written. */
int main(void) { return 77; }
