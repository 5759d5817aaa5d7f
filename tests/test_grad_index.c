/* tests/test_grad_index.c: placeholder, being written. */
int main(void) { return 77; }
