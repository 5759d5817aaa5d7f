/* tests/test_grad_nn.c: placeholder, being written. */
int main(void) { return 77; }
